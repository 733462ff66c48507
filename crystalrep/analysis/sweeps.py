"""How much to believe a 2-D map: seed × parameter sweeps, alignment and faithfulness numbers.

Layouts are aligned to a reference with a similarity Procrustes fit (``scipy.linalg.
orthogonal_procrustes`` on centred coordinates plus the optimal isotropic scale), mapped into
the *reference's* frame so panels share axes and units; ``scipy.spatial.procrustes`` is used
only for the disparity number, because it standardises both layouts. Trustworthiness and kNN
overlap are computed within one fixed random subsample of the rows (neighbours among the
subsample), the same for every cell, and the result says how big it was.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.analysis.projections import (
    Projection,
    ProjectionSpec,
    make_spec,
    project_cached,
    run_spec,
)
from crystalrep.store import Store

__all__ = ["SweepResult", "align", "disparity", "knn_overlap", "map_separation", "sweep", "trustworthiness"]

K = 10
PROCESS_MIN_ROWS = 10_000


def subsample(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a fixed random subsample of ``size`` of ``n`` rows (all rows if fewer).

    Every map score (trustworthiness, kNN overlap, separation, cluster silhouette) draws its rows
    here, so the same seed scores the same rows everywhere.
    """
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _k(n: int, k: int) -> int:
    return max(1, min(k, math.ceil(n / 2) - 1))  # sklearn's trustworthiness needs k < n / 2


def align(Y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate/reflect, scale and shift ``Y`` onto ``reference`` (least squares), in its frame."""
    from scipy.linalg import orthogonal_procrustes

    Y, ref = np.asarray(Y, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    a, b = Y - Y.mean(0), ref - ref.mean(0)
    rotation, singular_sum = orthogonal_procrustes(a, b)
    norm = float((a**2).sum())
    scale = singular_sum / norm if norm > 0 else 1.0
    return (scale * a @ rotation + ref.mean(0)).astype(np.float32)


def disparity(Y1: np.ndarray, Y2: np.ndarray) -> float:
    """Procrustes disparity of two layouts (0 = same shape up to rotation, scale, shift; max 1)."""
    from scipy.spatial import procrustes

    return float(procrustes(np.asarray(Y1, np.float64), np.asarray(Y2, np.float64))[2])


def _neighbours(X: np.ndarray, k: int, metric: str) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, metric=metric).fit(X).kneighbors(return_distance=False)


def knn_overlap(X: np.ndarray, Y: np.ndarray, *, k: int = K, metric: str = "euclidean") -> float:
    """Mean fraction of each row's ``k`` nearest neighbours in ``X`` kept among its ``k`` nearest in ``Y``.

    1 means neighbourhoods are kept; a random map scores about k/n.
    """
    k = min(k, len(X) - 1)
    full, flat = _neighbours(np.asarray(X), k, metric), _neighbours(np.asarray(Y), k, "euclidean")
    return float(np.mean([len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(full, flat, strict=True)]) / k)


def trustworthiness(X: np.ndarray, Y: np.ndarray, *, k: int = K, metric: str = "euclidean") -> float:
    """Trustworthiness (sklearn's) of the map ``Y`` of ``X`` (1 = no false neighbours in 2-D)."""
    from sklearn.manifold import trustworthiness as sk_trust

    return float(sk_trust(X, Y, n_neighbors=_k(len(X), k), metric=metric))


def map_separation(coords: np.ndarray, labels: Any, *, sample_size: int = 5000, seed: int = 0) -> float:
    """Silhouette of a 2-D map against labels: how separated the classes *look*.

    Rows with a missing label are dropped; large maps use a fixed random subsample of
    ``sample_size`` rows. NaN when fewer than 2 classes, or as many classes as rows, remain.
    """
    from sklearn.metrics import silhouette_score

    coords = np.asarray(coords, dtype=np.float64)
    labels = pd.Series(np.asarray(labels, dtype=object))
    if len(labels) != len(coords):
        raise ValueError(f"{len(labels)} labels for {len(coords)} points.")
    keep = labels.notna().to_numpy()
    coords, codes = coords[keep], pd.factorize(labels[keep])[0]
    rows = subsample(len(coords), sample_size, seed)
    coords, codes = coords[rows], codes[rows]
    if not 2 <= len(np.unique(codes)) < len(coords):
        return float("nan")
    return float(silhouette_score(coords, codes))


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Outcome of :func:`sweep`.

    Attributes:
        method: Projection method.
        table: One row per cell: the grid's parameters, ``trustworthiness`` and ``knn_overlap``
            (mean over seeds, with ``_std``), ``stability`` (mean pairwise Procrustes disparity
            between seeds; lower is more stable, NaN with one seed), ``seeds``, ``seconds``
            (summed projection time) and ``cached`` (runs read from the store).
        runs: One row per (cell, seed) with the same numbers and ``disparity_to_reference``.
        cells: Complete parameters of each cell, in table order.
        seeds: Seeds run for every cell.
        coords: ``(cell, seed) -> [n, 2]`` layout aligned to the reference (cell 0, first seed).
        sample: Row indices on which trustworthiness and kNN overlap were computed.
        k: Neighbours used by both (10 unless the sample is tiny).
    """

    method: str
    table: pd.DataFrame
    runs: pd.DataFrame
    cells: list[dict[str, Any]]
    seeds: list[int]
    coords: dict[tuple[int, int], np.ndarray]
    sample: np.ndarray
    k: int

    @property
    def sample_size(self) -> int:
        """Rows in the trustworthiness / kNN-overlap subsample."""
        return len(self.sample)


def _cells(method: str, grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not len(values):
            raise ValueError(f"grid entry {name!r} must be a non-empty list of values.")
    combos = itertools.product(*grid.values())
    return [dict(make_spec(method, dict(zip(grid, combo, strict=True))).params) for combo in combos]


def _run(i: int, X: np.ndarray, spec: ProjectionSpec, embedding_key: str | None, store: Store | None,
         n_jobs: int) -> tuple[int, Projection]:
    if embedding_key is None:
        return i, run_spec(X, spec, n_jobs=n_jobs)
    return i, project_cached(X, embedding_key, method=spec.method, params=dict(spec.params), seed=spec.seed,
                             store=store, n_jobs=n_jobs)


def _use_processes(method: str, n: int, n_tasks: int, n_jobs: int, processes: bool | None) -> bool:
    if n_jobs == 1 or n_tasks == 1:
        return False
    if processes is not None:
        return processes
    # Measured on 2 cores: t-SNE runs as fast on 2 threads as in 2 processes (5k rows: 47 s vs
    # 45 s for 4 runs) and faster at 1k (no worker start-up). Seeded UMAP is single-threaded, so
    # processes win, once a run outlasts the ~20 s of numba compilation each new worker pays.
    return method == "umap" and n >= PROCESS_MIN_ROWS


def _compute(X: np.ndarray, specs: list[ProjectionSpec], embedding_key: str | None, store: Store | None,
             n_jobs: int, processes: bool, progress: Callable[[int, int], None] | None) -> list[Projection]:
    """All projections: in worker processes (1 thread each) or serially with ``n_jobs`` threads."""
    out: list[Projection | None] = [None] * len(specs)
    if not processes:
        results: Any = (_run(i, X, s, embedding_key, store, n_jobs) for i, s in enumerate(specs))
    else:
        from joblib import Parallel, delayed

        # X goes as an argument, not in a closure, so joblib memory-maps it instead of pickling it per task
        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_run)(i, X, s, embedding_key, store, 1) for i, s in enumerate(specs))
    for done, (i, projection) in enumerate(results, start=1):
        out[i] = projection
        if progress is not None:
            progress(done, len(specs))
    return [p for p in out if p is not None]


def sweep(X: np.ndarray, *, method: str, grid: Mapping[str, Sequence[Any]], seeds: Sequence[int],
          embedding_key: str | None = None, store: Store | None = None, n_jobs: int = 1,
          processes: bool | None = None, trust_sample: int = 2000,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Project every (parameter combination × seed), align the layouts and score each cell.

    Args:
        X: Embedding ``[n, d]``.
        method: Key of :data:`~crystalrep.analysis.projections.PROJECTIONS`.
        grid: Parameter name -> values; cells are their product (``{}`` = one cell of defaults).
        seeds: Seeds run in every cell (distinct ints).
        embedding_key: When given, every projection is cached in the store under this key.
        store: Store for the cache (default: the one under ``$CRYSTALREP_HOME``).
        n_jobs: CPU cores to use: threads inside each projection, or worker processes.
        processes: Run projections in ``n_jobs`` worker processes (one thread each) instead of
            one after another with ``n_jobs`` threads. ``None`` chooses: processes only for
            UMAP on at least 10,000 rows (seeded UMAP is single-threaded; a new worker spends
            ~20 s compiling numba, which smaller runs do not repay).
        trust_sample: Size of the fixed random subsample for trustworthiness and kNN overlap.
        progress: Called with (projections done, total).

    Raises:
        ValueError: Unknown method or parameter, an empty grid entry, or no/duplicate seeds.
    """
    if any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in seeds):
        raise ValueError(f"seeds must be ints, got {list(seeds)!r}.")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds!r}.")
    cells = _cells(method, grid)
    if embedding_key is not None and store is None:
        store = Store()  # resolved here so worker processes write where the caller reads
    X = np.asarray(X)
    specs = [ProjectionSpec(method, tuple(sorted(c.items())), s) for c in cells for s in seeds]
    start = time.perf_counter()
    use = _use_processes(method, len(X), len(specs), n_jobs, processes)
    projections = _compute(X, specs, embedding_key, store, n_jobs, use, progress)
    sample = subsample(len(X), trust_sample)
    k = _k(len(sample), K)
    reference = projections[0].coords
    rows, coords = [], {}
    for (c, seed), p in zip(itertools.product(range(len(cells)), seeds), projections, strict=True):
        metric = str(cells[c].get("metric", "euclidean"))
        coords[c, seed] = align(p.coords, reference)
        rows.append({"cell": c, **{g: cells[c][g] for g in grid}, "seed": seed,
                     "trustworthiness": trustworthiness(X[sample], p.coords[sample], k=k, metric=metric),
                     "knn_overlap": knn_overlap(X[sample], p.coords[sample], k=k, metric=metric),
                     "disparity_to_reference": disparity(reference, p.coords),
                     "seconds": p.seconds, "cached": p.from_cache})
    runs = pd.DataFrame(rows)
    table = _summarise(runs, list(grid), {c: [coords[c, s] for s in seeds] for c in range(len(cells))})
    table.attrs.update(sample_size=len(sample), k=k, wall_seconds=time.perf_counter() - start)
    return SweepResult(method, table, runs, cells, seeds, coords, sample, k)


def _summarise(runs: pd.DataFrame, names: list[str], layouts: dict[int, list[np.ndarray]]) -> pd.DataFrame:
    table = runs.groupby("cell", sort=True).agg(
        **{n: (n, "first") for n in names},
        trustworthiness=("trustworthiness", "mean"), trustworthiness_std=("trustworthiness", "std"),
        knn_overlap=("knn_overlap", "mean"), knn_overlap_std=("knn_overlap", "std"),
        seeds=("seed", "size"), seconds=("seconds", "sum"), cached=("cached", "sum"))
    table.insert(len(names) + 2, "stability", [
        float(np.mean([disparity(a, b) for a, b in itertools.combinations(layouts[c], 2)]))
        if len(layouts[c]) > 1 else float("nan") for c in table.index])
    return table.reset_index(drop=True)
