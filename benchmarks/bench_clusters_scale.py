"""### Scaling: clustering

Time and peak memory of the Clusters page's clusterers against N = 10k, 50k, 200k and 1M rows.

Data: SYNTHETIC (no real set here is that large): the 64-d Gaussian mixture of the `projections`
section (30 anisotropic components, seed 0, float32), standing in for an embedding, which is what
the Clusters page and `crystalrep cluster` cluster. Each (method, N) runs in a fresh Python process
with the page's defaults, through the same functions the page and its background task call
(`crystalrep.analysis.clusters`): `hdbscan` is HDBSCAN with `min_cluster_size=15` (the `hdbscan`
package, one core for core distances) as the page runs it: on the embedding up to 20,000 rows, on its
first 10 principal components above (`hdbscan_pca_dims`); `hdbscan-full` is the same on every
dimension at every size, which is what the page did before; `kmeans` is k-means for every k in 2..12
(4 initialisations each) with the k of the best silhouette (2,000-row subsample) chosen. `seconds` is
the clusterer's wall time (data made and libraries imported before the timer); the note gives the
process's peak RSS (`ru_maxrss`: the imported libraries, the rows and the clusterer's own memory), its
CPU seconds over all threads, what it found and the 1-min load average. A size whose forecast from the
previous size exceeds 10 minutes is not started and is reported as skipped with the forecast (linear
in N, a lower bound; quadratic for `hdbscan-full`, whose 5x rows from 10k to 50k took 29x the time); a
run that exceeds 10 minutes is stopped and reported so.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmarks import row, run_script, within_budget

SIZES = (10_000, 50_000, 200_000, 1_000_000)
QUICK_SIZES = (2_000, 5_000)
BUDGET_S = 600.0  # one run's limit
METHODS = {"hdbscan": "crystalrep cluster hdbscan (min_cluster_size 15; 10 PCs above 20,000 rows)",
           "hdbscan-full": "hdbscan on every dimension (min_cluster_size 15)",
           "kmeans": "crystalrep cluster k-means (k = 2..12, best silhouette)"}
GROWTH = {"hdbscan-full": 2.0}  # forecast exponent (time ~ N^a); 1 for the others

_CHILD = """
import json, os, resource, sys, time
from benchmarks.bench_projections import gaussian_mixture
from crystalrep.analysis.clusters import cluster, hdbscan_pca_dims
method, n = sys.argv[1], int(sys.argv[2])
X = gaussian_mixture(n)
params = {"pca_dims": hdbscan_pca_dims(n)} if method == "hdbscan" else {}
name = "hdbscan" if method.startswith("hdbscan") else method
cluster(X[:500], name)  # imports and first-call set-up outside the timer
start, cpu = time.perf_counter(), time.process_time()
result = cluster(X, name, **params)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_gb": peak, "clusters": result.n_clusters,
                  "noise": result.noise_fraction, "k": result.params.get("k"), "pca": result.params.get("pca_dims"),
                  "load": os.getloadavg()[0]}))
"""


def _child(method: str, n: int) -> dict[str, Any] | None:
    """One timed clustering in a fresh process; ``None`` when it ran over the budget."""
    return run_script(_CHILD, [method, str(n)], BUDGET_S)


def _found(method: str, got: dict[str, Any]) -> str:
    if method == "kmeans":
        return f"k = {got['k']} chosen"
    space = f"on {got['pca']} principal components" if got.get("pca") else "on every dimension"
    return f"{space}: {got['clusters']} clusters, {100 * got['noise']:.1f} % noise"


def run(quick: bool) -> list[dict[str, Any]]:
    """Both clusterers at each size (2k and 5k when quick), each run in its own process."""
    rows = []
    for method, impl in METHODS.items():
        sizes = QUICK_SIZES if quick else SIZES
        for n, got, why in within_budget(sizes, BUDGET_S, partial(_child, method), GROWTH.get(method, 1.0)):
            stage = f"Scaling: clustering {method} {n:,}×64"
            if got is None:
                rows.append(row(stage, impl, "ours", n, float("nan"),
                                f"skipped: over the {BUDGET_S / 60:.0f}-minute budget ({why})"))
                continue
            rows.append(row(stage, impl, "ours", n, got["seconds"],
                            f"{_found(method, got)}; peak RSS {got['peak_gb']:.2f} GB; CPU {got['cpu']:.0f} s; "
                            f"load {got['load']:.1f}"))
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Time per row count from the smallest to the largest size that ran, per clusterer."""
    lines = []
    for method in METHODS:
        ran = [r for r in rows if f" {method} " in r["stage"] and r["seconds"] == r["seconds"]]
        skipped = [r for r in rows if f" {method} " in r["stage"] and r["seconds"] != r["seconds"]]
        if len(ran) >= 2:
            a, b = ran[0], ran[-1]
            lines.append(f"{method}: {b['n'] / a['n']:.0f}× the rows took {b['seconds'] / a['seconds']:.1f}× the time "
                         f"({a['n']:,} → {b['n']:,}).")
        lines += [f"{method} at {r['n']:,} rows: {r['note']}." for r in skipped]
    return lines
