"""Scaling: projections — time and peak memory of UMAP and t-SNE against N = 10k, 50k, 200k and 1M rows.

Data: synthetic, no real set is that large here: the 64-d Gaussian mixture of the `projections`
section (30 anisotropic components, seed 0), float32. Each (method, N) runs in a fresh Python
process: `project(method=..., seed=0, n_jobs=2)` with crystalrep's defaults, so up to 50k rows
the kNN graph is exact (faiss) and above it approximate (UMAP: umap-learn's NN-descent; t-SNE:
openTSNE's Annoy), as the `neighbors` column of each note says. `seconds` is the projection's own
wall time (numba's code compiled by a 5k-row call of the same neighbour path first, not timed); the
note gives the process's peak RSS (`ru_maxrss`, which includes the ~0.4 GB of imported libraries
and the input rows), its CPU seconds over all threads and the 1-min load average. A run that would take over 10 minutes is stopped
and reported as skipped. There are no peers here: `projections` compares with umap-learn and
scikit-learn at 20k/50k.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks import row, run_script, within_budget

SIZES = (10_000, 50_000, 200_000, 1_000_000)
BUDGET_S = 600.0  # one run's limit

_CHILD = """
import json, os, resource, sys, time
from benchmarks.bench_projections import gaussian_mixture, trust
from crystalrep.analysis.projections import project
method, n = sys.argv[1], int(sys.argv[2])
if method == "umap":  # numba compilation (of NN-descent too, where it will run) is not timed
    project(gaussian_mixture(5000, seed=1), method="umap", params={"knn": "exact" if n <= 50000 else "approx"},
            seed=0, n_jobs=2)
X = gaussian_mixture(n)
cpu = time.process_time()
p = project(X, method=method, seed=0, n_jobs=2)
cpu = time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps({"seconds": p.seconds, "cpu": cpu, "peak_gb": peak, "neighbors": p.neighbors,
                  "trust": trust(X, p.coords), "load": os.getloadavg()[0]}))
"""


def _child(method: str, n: int) -> dict[str, Any] | None:
    """One timed projection in a fresh process; ``None`` when it ran over the budget."""
    return run_script(_CHILD, [method, str(n)], BUDGET_S)


def run(quick: bool) -> list[dict[str, Any]]:
    """UMAP and t-SNE at each size (2k and 5k when quick), each in its own process."""
    rows = []
    for method, name in (("umap", "UMAP"), ("tsne", "t-SNE")):
        sizes = (2_000, 5_000) if quick else SIZES
        for n, got, why in within_budget(sizes, BUDGET_S, partial(_child, method)):
            stage = f"Scaling: {name} {n // 1000}k×64"
            if got is None:
                rows.append(row(stage, f"crystalrep project {method}", "ours", n, float("nan"),
                                f"skipped: over the {BUDGET_S / 60:.0f}-minute budget ({why})"))
                continue
            rows.append(row(stage, f"crystalrep project {method}", "ours", n, got["seconds"],
                            f"{got['neighbors']} kNN; peak RSS {got['peak_gb']:.2f} GB; CPU {got['cpu']:.0f} s; "
                            f"trustworthiness {got['trust']:.3f}; load {got['load']:.1f}"))
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Time per row count from the smallest to the largest size that ran."""
    lines = []
    for name in ("UMAP", "t-SNE"):
        ran = [r for r in rows if r["stage"].startswith(f"Scaling: {name} ") and r["seconds"] == r["seconds"]]
        if len(ran) >= 2:
            a, b = ran[0], ran[-1]
            lines.append(f"{name}: {b['n'] / a['n']:.0f}× the rows took {b['seconds'] / a['seconds']:.1f}× the time "
                         f"({a['n']:,} → {b['n']:,}).")
    return lines
