"""2-D projections: t-SNE (openTSNE FFT vs scikit-learn Barnes-Hut), UMAP, numba start-up, sweeps.

Data: a reproducible synthetic 64-d Gaussian mixture (30 anisotropic components, uneven weights,
seed 0) standing in for encoder embeddings, which are not stored at this size; run time depends
on the row count and width, not on what the rows mean. `t-SNE` stages: our `project(method=
"tsne")` forced to `negative_gradient_method="fft"` (250 early-exaggeration + 500 iterations,
default `knn="auto"`: exact brute-force neighbours up to 50k rows) against `sklearn.manifold.
TSNE(method="barnes_hut", max_iter=750)` with early stopping disabled, and against openTSNE
with its default Annoy neighbours; all with 2 threads; notes give trustworthiness (k=10) on a
fixed 2,000-row subsample and the final KL divergence where the library reports it. `UMAP`
stages: ours (exact brute-force kNN, then umap-learn's layout) against umap-learn's default
(NNDescent neighbours), seeded (single-threaded, reproducible) and unseeded (2 threads), both
warmed up first. `UMAP first call` runs a fresh Python process: import + one seeded UMAP with
numba's cache cold (empty `NUMBA_CACHE_DIR`) and warm (persisted by the previous process);
the floor is a second call in the same process. `sweep` times a 2-perplexity × 2-seed t-SNE
(Barnes-Hut) sweep with 2 threads per run, in 2 worker processes, and on 1 thread. `--quick`
is a smoke test: 2k rows, 300 t-SNE iterations (250 + 50), a 1k-row sweep, no fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import best_of, row

EARLY = 250  # sklearn's early-exaggeration phase is fixed at 250 iterations; openTSNE's is set to match


def gaussian_mixture(n: int, *, d: int = 64, k: int = 30, seed: int = 0) -> np.ndarray:
    """``n`` float32 rows from a fixed mixture of ``k`` anisotropic Gaussians in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    scales = rng.uniform(0.3, 1.5, size=(k, d))
    comp = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 2.0)))
    return (means[comp] + scales[comp] * rng.normal(size=(n, d))).astype(np.float32)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _trust(X: np.ndarray, Y: np.ndarray) -> float:
    from crystalrep.analysis.sweeps import _sample, trustworthiness

    rows = _sample(len(X), 2000)
    return trustworthiness(X[rows], Y[rows])


def _tsne_rows(n: int, n_iter: int) -> list[dict[str, Any]]:
    import openTSNE
    from sklearn.manifold import TSNE

    from crystalrep.analysis.projections import project

    X = gaussian_mixture(n)
    stage = f"t-SNE {n // 1000}k×64, {n_iter} iter"
    params = {"early_exaggeration_iter": EARLY, "n_iter": n_iter - EARLY, "negative_gradient_method": "fft"}
    ours = project(X, method="tsne", params=params, seed=0, n_jobs=2)
    peer = TSNE(max_iter=n_iter, n_iter_without_progress=n_iter, min_grad_norm=0.0, init="pca", random_state=0, n_jobs=2)
    Y, peer_seconds = _timed(lambda: peer.fit_transform(X))
    annoy = openTSNE.TSNE(**params, neighbors="annoy", n_jobs=2, random_state=0)
    A, annoy_seconds = _timed(lambda: annoy.fit(X))
    return [
        row(stage, "crystalrep project tsne (openTSNE FFT)", "ours", n, ours.seconds,
            f"exact kNN; trustworthiness {_trust(X, ours.coords):.3f}"),
        row(stage, "sklearn TSNE (Barnes-Hut)", "peer", n, peer_seconds,
            f"ran {peer.n_iter_ + 1} iter; trustworthiness {_trust(X, Y):.3f}, KL {peer.kl_divergence_:.3f}"),
        row(stage, "openTSNE FFT, default Annoy kNN", "peer", n, annoy_seconds,
            f"trustworthiness {_trust(X, np.asarray(A)):.3f}, KL {A.kl_divergence:.3f}"),
    ]


def _umap_rows(n: int) -> list[dict[str, Any]]:
    import umap

    from crystalrep.analysis.projections import project

    X = gaussian_mixture(n)
    warm = gaussian_mixture(min(n, 5000), seed=1)  # 5000 >= 4096 rows: NNDescent's code is compiled too
    for knn, seed in (("auto", 0), ("approx", 0), ("auto", None), ("approx", None)):
        project(warm, method="umap", params={"knn": knn}, seed=seed, n_jobs=2)  # unseeded: parallel code
    rows = []
    for seed, label in ((0, "seeded"), (None, "unseeded")):
        stage = f"UMAP {n // 1000}k×64, {label}"
        ours = project(X, method="umap", seed=seed, n_jobs=2)
        jobs = 1 if seed is not None else 2
        peer = best_of(lambda s=seed, j=jobs: umap.UMAP(random_state=s, n_jobs=j).fit_transform(X), 1)
        note = "exact kNN" + (" (umap-learn does it itself below 4,096 rows)" if n < 4096 else "")
        rows += [row(stage, "crystalrep project umap", "ours", n, ours.seconds, f"{note}; {jobs} thread(s) in the layout"),
                 row(stage, "umap-learn UMAP (NNDescent)", "peer", n, peer)]
    return rows


_FRESH = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from benchmarks.bench_projections import gaussian_mixture
from crystalrep.analysis.projections import project
X = gaussian_mixture(int(sys.argv[1]))
project(X, method="umap", params={"knn": sys.argv[2]}, seed=0)
first = time.perf_counter() - start
again = project(X, method="umap", params={"knn": sys.argv[2]}, seed=0).seconds
print(json.dumps({"first": first, "again": again}))
"""


def _fresh(n: int, knn: str, cache_dir: str) -> dict[str, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", _FRESH, str(n), knn], env=env, check=True,
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fresh_rows(n: int) -> list[dict[str, Any]]:
    stage = f"UMAP first call, fresh process, {n // 1000}k×64"
    with tempfile.TemporaryDirectory() as cache:
        cold = _fresh(n, "auto", cache)
        warm = _fresh(n, "auto", cache)
        rows = [row(stage, "crystalrep umap, numba cache warm", "ours", n, warm["first"], "import + first call"),
                row(stage, "crystalrep umap, numba cache cold", "peer", n, cold["first"], "what a process without a persisted cache pays"),
                row(stage, "same call again in that process", "floor", n, warm["again"], "compiled")]
        if n >= 4096:
            nnd = _fresh(n, "approx", cache)
            rows.append(row(stage, "umap-learn NNDescent, numba cache warm", "peer", n, nnd["first"],
                            "NNDescent's numba code is not cacheable"))
    return rows


def _sweep_rows(n: int, n_iter: int) -> list[dict[str, Any]]:
    from crystalrep.analysis.sweeps import sweep

    X = gaussian_mixture(n)
    fixed = {"negative_gradient_method": "bh", "early_exaggeration_iter": EARLY, "n_iter": n_iter - EARLY}
    grid = {"perplexity": [15, 30], **{k: [v] for k, v in fixed.items()}}
    stage = f"t-SNE sweep 2×2, {n / 1000:g}k×64"
    rows = []
    for impl, kind, kwargs in (("crystalrep sweep n_jobs=2 (2 threads per run)", "ours", {"n_jobs": 2}),
                               ("crystalrep sweep n_jobs=2, processes=True", "peer", {"n_jobs": 2, "processes": True}),
                               ("crystalrep sweep n_jobs=1", "peer", {"n_jobs": 1})):
        res = sweep(X, method="tsne", grid=grid, seeds=[0, 1], **kwargs)
        rows.append(row(stage, impl, kind, n, res.table.attrs["wall_seconds"], "incl. trustworthiness/kNN overlap"))
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """t-SNE at 20k and 50k (2k when quick), UMAP at 50k (2k), fresh-process UMAP, a small sweep."""
    if quick:  # a smoke test: small sizes, 300 t-SNE iterations, no fresh-process compilation
        return _tsne_rows(2_000, 300) + _umap_rows(2_000) + _sweep_rows(1_000, 300)
    rows = _tsne_rows(20_000, 750) + _tsne_rows(50_000, 750) + _umap_rows(50_000)
    return rows + _fresh_rows(10_000) + _sweep_rows(5_000, 750)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Check the issue's targets: t-SNE ≥ 2.5× faster than sklearn at 20k, ≥ 4× at 50k."""
    by = {(r["stage"], r["kind"]): r["seconds"] for r in rows if r["kind"] == "ours"}
    by_impl = {(r["stage"], r["impl"]): r["seconds"] for r in rows}
    lines = []
    for n, target, iters in ((2, None, 300), (20, 2.5, 750), (50, 4.0, 750)):
        stage = f"t-SNE {n}k×64, {iters} iter"
        if (stage, "ours") in by:
            speedup = by_impl[stage, "sklearn TSNE (Barnes-Hut)"] / by[stage, "ours"]
            verdict = f" (target ≥ {target}×: {'met' if speedup >= target else 'MISSED'})" if target else \
                " (no target at this size; FFT forced: crystalrep's default picks Barnes-Hut below 10k rows)"
            lines.append(f"t-SNE {n}k: openTSNE FFT is {speedup:.1f}× faster than sklearn Barnes-Hut{verdict}.")
    sweeps = [r["seconds"] for r in rows if r["stage"].startswith("t-SNE sweep")]
    if sweeps:
        lines.append(f"t-SNE sweep: 2 threads per run {sweeps[2] / sweeps[0]:.2f}× and 2 worker processes "
                     f"{sweeps[2] / sweeps[1]:.2f}× as fast as 1 thread.")
    lines.append("Issue's peer figures (2 cores): sklearn t-SNE 20k 137 s; openTSNE 20k 62 s, 50k 108 s; "
                 "UMAP 50k 18 s unseeded, 29 s seeded, + ~50–60 s numba compilation per fresh process.")
    return lines
