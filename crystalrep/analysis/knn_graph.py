"""The k-nearest-neighbour graph a UMAP or t-SNE map is built on, and which search made it.

Up to :data:`EXACT_KNN_MAX` rows (``knn="auto"``) the graph is exact: faiss's brute-force
``IndexFlatL2`` (Euclidean) or ``IndexFlatIP`` on unit rows (cosine) proposes the neighbours with
BLAS, then each proposed pair's distance is recomputed in float64 and the rows are re-sorted, so
a point's own distance is exactly 0 (UMAP reads the first non-zero distance as the local scale;
faiss's ``|x|² + |y|² - 2xy`` leaves float32 noise there). Other metrics use scikit-learn's brute
force. Above it, the libraries' approximate searches take over: umap-learn's NN-descent,
openTSNE's Annoy (or pynndescent for metrics Annoy lacks). :func:`neighbour_method` names the
search a request uses; the projection's metadata records it.

Why exact up to 50,000 rows for UMAP, measured at 50k × 64 on 2 cores: once compiled, NN-descent
builds the graph in ~2 s and this search in ~8 CPU-s, but NN-descent's ~30 s compilation is paid in
every new process (numba cannot cache kernels that take the metric as an argument), and maps are
computed in new processes (CLI, background jobs). ``benchmarks/bench_projections_umap.py`` times
both conditions against umap-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["EXACT_KNN_MAX", "exact_knn", "neighbour_method", "uses_exact"]

EXACT_KNN_MAX = 50_000  # knn="auto": exact up to here, the library's approximate search above
UMAP_OWN_EXACT = 4096  # below this many rows umap-learn computes all pairwise distances itself
FAISS_METRICS = ("euclidean", "l2", "cosine")
ANNOY_METRICS = ("cosine", "euclidean", "manhattan", "hamming", "dot", "l1", "l2", "taxicab")
_BLOCK = 4096  # rows per block when recomputing distances (bounds memory at k × d × block)
# faiss's BLAS blocks (queries × database rows; its defaults are 4096 × 1024). At 50k × 64 on 2 threads,
# two interleaved runs of 5 each on a quiet machine (2026-12-02), median (best) wall seconds:
# 2048 × 1024: 3.17 (3.09), 4.38 (3.12); 4096 × 1024: 3.61 (3.18); 1024 × 1024: 3.74 (3.31);
# 16384 × 4096: 4.38 (4.04), 5.37 (4.88). An 8 MB distance tile stays in cache, a 256 MB one does not.
_FAISS_BLOCKS = (2048, 1024)


def uses_exact(knn: str, n: int) -> bool:
    """Whether ``knn`` (``"auto"``, ``"exact"``, ``"approx"``) asks for an exact graph on ``n`` rows."""
    return knn == "exact" or (knn == "auto" and n <= EXACT_KNN_MAX)


def _exact_name(metric: str) -> str:
    return "exact (faiss)" if metric in FAISS_METRICS else "exact (scikit-learn brute force)"


def neighbour_method(method: str, params: Mapping[str, Any], n: int) -> str:
    """The neighbour search a projection of ``n`` rows with ``params`` uses, in words.

    ``"none"`` for PCA; otherwise ``"exact (faiss)"``, ``"exact (scikit-learn brute force)"``,
    ``"exact (umap-learn pairwise)"`` (UMAP below 4,096 rows), ``"approximate (NN-descent)"``
    (UMAP) or ``"approximate (Annoy)"`` / ``"approximate (pynndescent)"`` (t-SNE).
    """
    if method not in ("umap", "tsne"):
        return "none"
    metric, knn = str(params.get("metric", "euclidean")), str(params.get("knn", "auto"))
    if method == "umap":
        if n < UMAP_OWN_EXACT:
            return "exact (umap-learn pairwise)"
        return _exact_name(metric) if uses_exact(knn, n) else "approximate (NN-descent)"
    if uses_exact(knn, n):
        return _exact_name(metric)
    return "approximate (Annoy)" if metric in ANNOY_METRICS else "approximate (pynndescent)"


def exact_knn(X: np.ndarray, k: int, *, metric: str = "euclidean", include_self: bool = True,
              n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest neighbours of every row of ``X`` among the rows of ``X``.

    Args:
        X: Rows ``[n, d]``.
        k: Neighbours per row (counting the row itself when ``include_self``).
        metric: ``"euclidean"``/``"l2"`` or ``"cosine"`` (faiss); any other metric scikit-learn's
            brute force knows.
        include_self: Whether each row is its own first neighbour (UMAP's convention) or left
            out (openTSNE's).
        n_jobs: Threads for the search.

    Returns:
        ``(indices int64 [n, k], distances float32 [n, k])``, each row sorted by distance (ties
        by index, the row itself first).

    Raises:
        ValueError: ``k`` outside ``1..n`` (``1..n-1`` without self).
    """
    X = np.asarray(X)
    n = len(X)
    want = k if include_self else k + 1
    if not 1 <= k or want > n:
        raise ValueError(f"cannot find {k} neighbours among {n} rows.")
    unit = None
    if metric == "cosine":
        norms = np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
        if np.all(norms > 0):
            unit = X / norms
    if metric in ("euclidean", "l2") or unit is not None:
        data = X if unit is None else unit
        idx = _faiss_search(data, want, inner_product=unit is not None, n_jobs=n_jobs)
        dist = _distances(data, idx, cosine=unit is not None)
    else:
        from sklearn.neighbors import NearestNeighbors

        search = NearestNeighbors(n_neighbors=want, algorithm="brute", metric=metric, n_jobs=n_jobs)
        dist, idx = search.fit(X).kneighbors(X)
    idx, dist = _sorted(idx.astype(np.int64), dist)
    if include_self:
        return idx, dist
    keep = idx != np.arange(n)[:, None]
    keep[keep.all(axis=1), -1] = False  # the row itself was crowded out by duplicates: drop the farthest
    return idx[keep].reshape(n, k), dist[keep].reshape(n, k)


def _faiss_search(X: np.ndarray, k: int, *, inner_product: bool, n_jobs: int) -> np.ndarray:
    import faiss

    data = np.ascontiguousarray(X, dtype=np.float32)
    index = faiss.IndexFlatIP(data.shape[1]) if inner_product else faiss.IndexFlatL2(data.shape[1])
    index.add(data)
    threads = faiss.omp_get_max_threads()
    blocks = faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_database_bs
    faiss.omp_set_num_threads(max(1, n_jobs))
    faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_database_bs = _FAISS_BLOCKS
    try:
        _, idx = index.search(data, k)
    finally:
        faiss.omp_set_num_threads(threads)
        faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_database_bs = blocks
    return idx


def _distances(X: np.ndarray, idx: np.ndarray, *, cosine: bool) -> np.ndarray:
    """Each (row, proposed neighbour) distance recomputed in float64, block by block."""
    n, k = idx.shape
    dist = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, _BLOCK):
        rows = slice(start, min(start + _BLOCK, n))
        a = np.asarray(X[rows], dtype=np.float64)[:, None, :]
        b = np.asarray(X[idx[rows]], dtype=np.float64)
        if cosine:
            dist[rows] = np.clip(1.0 - np.einsum("ikd,ikd->ik", np.broadcast_to(a, b.shape), b), 0.0, 2.0)
        else:
            diff = b - a
            dist[rows] = np.sqrt(np.einsum("ikd,ikd->ik", diff, diff))
    return dist


def _sorted(idx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by distance, then the row itself first (its distance set to 0), then by index."""
    own = idx == np.arange(len(idx))[:, None]
    dist = np.where(own, 0.0, dist)
    order = np.lexsort((idx, ~own, dist), axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1).astype(np.float32)
