"""2-D projections, UMAP: ours vs umap-learn's defaults at 50k rows, seeded and unseeded, in one run.

Data: the synthetic 64-d Gaussian mixture of the `projections` section (seed 0). Ours:
`project(method="umap")` with its defaults: the exact 15-NN graph from faiss (`IndexFlatL2` on 2
threads, each pair's distance recomputed in float64) handed to umap-learn as `precomputed_knn`.
Peer: `umap.UMAP()` with its defaults (NN-descent neighbours). Seeded, umap-learn's layout is
single-threaded and reproducible (it also runs NN-descent on one thread); unseeded, both use 2
threads. One warm-up call of each path on 5k rows first, so numba compilation is not timed.
Notes: trustworthiness (k=10, sklearn's) on the fixed 2,000-row subsample, the process's CPU
seconds over all threads, and the 1-min load average when the row finished (the machine is shared). `--quick`: 5k rows.
"""

from __future__ import annotations

from typing import Any

from benchmarks import row
from benchmarks.bench_projections import cpu_of, gaussian_mixture, load_note, timed, trust

PEER = "umap-learn UMAP defaults (NN-descent)"


def _umap_rows(n: int) -> list[dict[str, Any]]:
    import umap

    from crystalrep.analysis.projections import project

    X = gaussian_mixture(n)
    warm = gaussian_mixture(min(n, 5000), seed=1)  # 5000 >= 4096 rows: NN-descent's code is compiled too
    for seed in (0, None):
        project(warm, method="umap", seed=seed, n_jobs=2)
        umap.UMAP(random_state=seed, n_jobs=1 if seed is not None else 2).fit_transform(warm)
    rows = []
    for seed, label in ((0, "seeded"), (None, "unseeded")):
        stage = f"UMAP {n / 1000:g}k×64, {label}"
        ours, seconds, cpu = timed(lambda s=seed: project(X, method="umap", seed=s, n_jobs=2))
        jobs = 1 if seed is not None else 2
        rows.append(row(stage, "crystalrep project umap", "ours", n, seconds,
                        f"{ours.neighbors} kNN (2 threads), {jobs} thread(s) in the layout; "
                        f"trustworthiness {trust(X, ours.coords):.3f}; CPU {cpu:.1f} s; {load_note()}"))
        model = umap.UMAP(random_state=seed, n_jobs=jobs)
        Y, seconds, cpu = timed(lambda m=model: m.fit_transform(X))
        rows.append(row(stage, PEER, "peer", n, seconds,
                        f"{jobs} thread(s); trustworthiness {trust(X, Y):.3f}; CPU {cpu:.1f} s; {load_note()}"))
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """UMAP at 50k rows (5k when quick)."""
    return _umap_rows(5_000 if quick else 50_000)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's target: UMAP at least as fast as umap-learn at 50k, seeded and unseeded."""
    by = {(r["stage"], r["impl"]): r for r in rows}
    lines = []
    for r in rows:
        if r["kind"] == "ours":
            peer = by[r["stage"], PEER]
            ratio, cpu = peer["seconds"] / r["seconds"], cpu_of(peer["note"]) / cpu_of(r["note"])
            target = " (target ≥ 1×: " + ("met)" if ratio >= 1.0 else "MISSED)") if "50k" in r["stage"] else ""
            lines.append(f"{r['stage']}: ours {ratio:.2f}× as fast as umap-learn in wall time{target}, {cpu:.2f}× in "
                         "CPU time; trustworthiness in the notes.")
    return lines
