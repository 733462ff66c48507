"""Exact search backends (faiss flat, scikit-learn brute force) and the tie-breaking wrapper every search goes through.

A backend turns indexed rows into ``search(Q, k) -> (distances, indices)``; :func:`tie_broken`
recomputes candidate distances in float64, rounds them to a grid and orders ties by row index, so
faiss, scikit-learn and the approximate index return the same neighbours in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "METRICS", "TIE_RESOLUTION", "TIE_RTOL", "Search", "exact_grid_distances", "fetch_settled",
           "normalise", "tie_broken", "tie_unit"]

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
METRICS = ("cosine", "euclidean")
_FEW_QUERIES = 20  # faiss's own threshold below which it skips BLAS and scans per query


_ROWS = 8192  # rows normalised at a time


def normalise(X: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero); into ``X`` itself when ``inplace``.

    ``np.linalg.norm(X, axis=1)`` and ``X / norms``, a block of rows at a time (each row's norm is
    its own reduction, so the values are the same bit for bit): no temporary the size of ``X``.
    """
    X = np.asarray(X)
    out = X if inplace else np.empty(X.shape, dtype=np.result_type(X.dtype, np.float32))
    for start in range(0, len(X), _ROWS):
        part = X[start:start + _ROWS]
        norms = np.sqrt(np.add.reduce(part * part, axis=1, keepdims=True))
        np.divide(part, np.maximum(norms, 1e-12), out=out[start:start + _ROWS])
    return out


def _faiss_search(X: np.ndarray, metric: str) -> Search:
    import faiss

    index = faiss.IndexFlatIP(X.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(X.shape[1])
    index.add(X)

    def search(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(Q) >= _FEW_QUERIES:
            scores, idx = index.search(Q, k)
        else:
            # Few queries gain nothing from OpenMP threads, and on a busy machine their
            # spin-waiting costs 20-40 ms per query (measured); the setting is per calling thread.
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                scores, idx = index.search(Q, k)
            finally:
                faiss.omp_set_num_threads(threads)
        # Rounding can push 1 - cos a hair below zero; clip as scikit-learn does, so both backends agree.
        dist = np.maximum(1.0 - scores, 0.0) if metric == "cosine" else np.sqrt(np.maximum(scores, 0.0))
        return dist, idx

    return search


def _sklearn_search(X: np.ndarray, metric: str) -> Search:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(algorithm="brute", metric=metric).fit(X)

    def search(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = nn.kneighbors(Q, n_neighbors=k)
        return dist.astype(np.float32), idx.astype(np.int64)

    return search


def _auto_search(X: np.ndarray, metric: str) -> Search:
    try:
        return _faiss_search(X, metric)
    except ImportError:
        log.info("faiss is not installed; using scikit-learn brute-force search")
        return _sklearn_search(X, metric)


TIE_RTOL = 1e-5  # backends' float32 distances to a tied pair differ by rounding; wider counts as tied
TIE_RESOLUTION = 1e-6  # distances are reported on this grid (times the data scale): equal ones are ties


def tie_unit(X: np.ndarray, metric: str) -> float:
    """The grid distances are reported on: ``TIE_RESOLUTION`` of 1 (cosine) or of the largest row norm."""
    return TIE_RESOLUTION * (1.0 if metric == "cosine" else max(float(np.linalg.norm(X, axis=1).max()), 1e-12))


def exact_grid_distances(X: np.ndarray, idx: np.ndarray, Q: np.ndarray, metric: str, unit: float) -> np.ndarray:
    """Distances from each query ``Q[i]`` to the rows ``X[idx[i, j]]``: float64 from the float32 rows, on the ``unit`` grid.

    Returned as float32, the precision every search reports; equal values are ties.
    """
    rows, q = X[idx].astype(np.float64), Q.astype(np.float64)[:, None, :]
    if metric == "cosine":
        d = np.maximum(1.0 - (rows * q).sum(axis=2), 0.0)
    else:
        d = np.sqrt(((rows - q) ** 2).sum(axis=2))
    return (np.round(d / unit) * unit).astype(np.float32)


def fetch_settled(search: Search, Q: np.ndarray, k: int, limit: int, *,
                  kth_at: Callable[[np.ndarray, int], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Candidates ``(distances, indices)`` for each query, fetched until its k-th is clearly nearer than the last one.

    Only the queries whose k-th distance may tie with a candidate not yet fetched are searched
    again, wider (doubling, at most ``limit``): with many duplicate rows widening every query of a
    chunk for the few with long ties cost minutes at 200k rows. The others keep their candidates,
    padded as "not found" (index -1, distance infinity).

    Args:
        search: The backend.
        Q: Queries.
        k: The place whose distance must be settled.
        limit: Most candidates to fetch.
        kth_at: ``kth_at(indices, fetched)``: the column holding each query's k-th item (default
            ``k - 1``; a search over groups of rows counts rows, not candidates).
    """
    fetch = min(limit, k + 8)
    dist, idx = search(Q, fetch)
    todo = np.arange(len(Q))
    while fetch < limit and len(todo):
        at = np.full(len(todo), k - 1) if kth_at is None else kth_at(idx[todo], fetch)
        edge = dist[todo, at].astype(np.float64)
        todo = todo[~(dist[todo, fetch - 1] > edge + TIE_RTOL * (1.0 + np.abs(edge)))]
        if not len(todo):
            break
        fetch = min(limit, 2 * fetch)
        wider_d, wider_i = search(Q[todo], fetch)
        pad = ((0, 0), (0, fetch - dist.shape[1]))
        dist, idx = np.pad(dist, pad, constant_values=np.inf), np.pad(idx, pad, constant_values=-1)
        dist[todo], idx[todo] = wider_d, wider_i
    return dist, idx


def tie_broken(search: Search, X: np.ndarray, metric: str, *, max_fetch: int | None = None,
               unit: float | None = None) -> Search:
    """Wrap a backend so results are ordered by (distance, row index), whichever backend ran.

    Candidates are fetched until the k-th distance is clearly below the last one fetched (so every
    row tied with the k-th is among them; at most ``max_fetch`` candidates when given), their
    distances recomputed the same way (float64 from the indexed float32 rows) and rounded to
    ``TIE_RESOLUTION`` of the data scale (1 for cosine, the largest row norm for euclidean), then
    sorted by distance and, for equal distances, by row index. A candidate the backend did not
    find (index -1, approximate search only) sorts last. ``unit`` is the grid when the caller has
    it already (:func:`tie_unit` of ``X``).
    """
    n = len(X)
    cap = n if max_fetch is None else min(n, max_fetch)
    grid = tie_unit(X, metric) if unit is None else unit

    def search_sorted(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = fetch_settled(search, Q, k, max(cap, k))
        found = idx >= 0
        idx = np.where(found, idx, n)  # a missing candidate sorts after every row
        exact = np.empty(idx.shape, dtype=np.float32)
        for start in range(0, len(Q), 256):  # bounded memory: 256 queries x candidates x dim at a time
            part = slice(start, start + 256)
            d = exact_grid_distances(X, np.minimum(idx[part], n - 1), Q[part], metric, grid)
            exact[part] = np.where(found[part], d, np.inf)
        order = np.lexsort((idx, exact), axis=1)[:, :k]
        return np.take_along_axis(exact, order, axis=1), np.take_along_axis(idx, order, axis=1).astype(np.int64)

    return search_sorted


BACKENDS: dict[str, Callable[[np.ndarray, str], Search]] = {
    "auto": _auto_search,
    "faiss": _faiss_search,
    "sklearn": _sklearn_search,
}
