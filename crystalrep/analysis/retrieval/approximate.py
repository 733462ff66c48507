"""Approximate neighbours for big indexed sets: a faiss IVF index tuned until its measured recall@10 holds.

Above :func:`approximate_threshold` rows (default 1,000,000; ``CRYSTALREP_APPROX_KNN_ABOVE``
overrides it) exact search costs a full scan per query. The IVF index clusters the rows into
``nlist`` ≈ √n lists and scans ``nprobe`` of them per query. ``nprobe`` is chosen by measurement:
doubled until recall@10 against exact search, on one sample of indexed rows, reaches the target,
then recall@10 is measured again on a disjoint held-out sample, and that number is the one
reported beside the results.

Recall counts a returned neighbour as correct when its distance is within the exact 10th
neighbour's (on the index's tie grid), so rows tied with the 10th count whichever of them is
returned.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["APPROX_ENV", "DEFAULT_APPROX_ABOVE", "RECALL_K", "Approximate", "approximate_threshold",
           "build_ivf", "exact_kth_distance", "recall_at_k", "tune_nprobe"]

APPROX_ENV = "CRYSTALREP_APPROX_KNN_ABOVE"
DEFAULT_APPROX_ABOVE = 1_000_000
RECALL_K = 10
TARGET_RECALL = 0.99

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def approximate_threshold() -> int:
    """Rows from which retrieval uses the approximate index: ``$CRYSTALREP_APPROX_KNN_ABOVE`` or 1,000,000.

    Raises:
        ValueError: If the environment variable is not a positive integer.
    """
    raw = os.environ.get(APPROX_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_APPROX_ABOVE
    try:
        value = int(raw.replace("_", "").replace(",", ""))
    except ValueError:
        raise ValueError(f"{APPROX_ENV} must be a positive integer, got {raw!r}.") from None
    if value < 1:
        raise ValueError(f"{APPROX_ENV} must be a positive integer, got {raw!r}.")
    return value


@dataclass
class Approximate:
    """What the approximate index is and how well it agrees with exact search.

    Attributes:
        method: e.g. ``"faiss IVF-Flat"``.
        params: ``nlist``, ``nprobe`` and the training sample size.
        recall_at_10: Measured on ``n_queries`` held-out indexed rows (each left out of its own list).
        n_queries: Held-out queries behind ``recall_at_10``.
        seconds: Build and tuning time.
        curve: ``(nprobe, recall on the tuning sample)`` for every setting tried.
    """

    method: str
    params: dict[str, int]
    recall_at_10: float = float("nan")
    n_queries: int = 0
    seconds: float = 0.0
    curve: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for tables, benchmarks and pages)."""
        return {"method": self.method, **self.params, "recall_at_10": self.recall_at_10,
                "n_queries": self.n_queries, "seconds": round(self.seconds, 3)}


def build_ivf(X: np.ndarray, metric: str, *, seed: int = 0) -> tuple[Any, Search]:
    """A trained, filled faiss ``IndexIVFFlat`` over ``X`` (already normalised for cosine) and its raw search.

    The search returns ``(distances, indices)`` like the exact backends (``1 - cos`` or euclidean);
    a query whose probed lists hold fewer than ``k`` rows is searched again with more lists.
    """
    import faiss

    n, d = X.shape
    nlist = int(min(max(16, round(math.sqrt(n))), max(1, n // 40)))
    inner = metric == "cosine"
    quantizer = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)
    index.cp.seed = seed
    index.cp.max_points_per_centroid = 64  # k-means on at most 64 rows per list: enough for coarse lists
    index.train(X)
    index.add(X)

    def search(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, idx = index.search(Q, k)
        short = (idx < 0).any(axis=1)
        nprobe = index.nprobe
        while short.any() and nprobe < nlist:  # tiny lists: widen only the queries that came up short
            nprobe = min(nlist, 4 * nprobe)  # per call, so concurrent searches never see another's setting
            wider = faiss.SearchParametersIVF()
            wider.nprobe = nprobe
            scores[short], idx[short] = index.search(np.ascontiguousarray(Q[short]), k, params=wider)
            short = (idx < 0).any(axis=1)
        found = idx >= 0
        if inner:
            dist = np.where(found, np.maximum(1.0 - scores, 0.0), np.inf).astype(np.float32)
        else:
            dist = np.where(found, np.sqrt(np.maximum(scores, 0.0)), np.inf).astype(np.float32)
        return dist, idx.astype(np.int64)

    return index, search


def exact_kth_distance(X: np.ndarray, rows: np.ndarray, k: int, metric: str, *, unit: float) -> np.ndarray:
    """Exact distance from each indexed row in ``rows`` to its ``k``-th neighbour (itself excluded), on the tie grid.

    Candidates come from a faiss brute-force scan (float32); their distances are recomputed in
    float64 and rounded to ``unit``, as the index reports them.
    """
    import faiss

    Q = X[rows]
    scores, idx = faiss.knn(Q, X, min(len(X), k + 8),
                            metric=faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2)
    cand, q = X[idx].astype(np.float64), Q.astype(np.float64)[:, None, :]
    if metric == "cosine":
        d = np.maximum(1.0 - (cand * q).sum(axis=2), 0.0)
    else:
        d = np.sqrt(((cand - q) ** 2).sum(axis=2))
    d = np.round(d / unit) * unit
    d[idx == rows[:, None]] = np.inf  # the query itself is not its own neighbour
    return np.sort(d, axis=1)[:, k - 1]


def recall_at_k(found: np.ndarray, kth: np.ndarray, *, unit: float) -> float:
    """Share of returned neighbours (distances ``found``, ``(m, k)``) within each query's exact ``k``-th distance."""
    return float((found <= kth[:, None] + 0.5 * unit).mean())


def tune_nprobe(index: Any, query_rows: Search, X: np.ndarray, metric: str, *, unit: float, seed: int = 0,
                target: float = TARGET_RECALL, n_tune: int = 200, n_eval: int = 500) -> tuple[float, int, list[tuple[int, float]]]:
    """Double ``index.nprobe`` until recall@10 reaches ``target`` on a tuning sample, then on a held-out one.

    Args:
        index: The faiss IVF index behind ``query_rows``; its ``nprobe`` is left at the chosen value.
        query_rows: Neighbours of indexed rows by position, each row left out of its own list.
        X: The indexed rows (as searched: normalised for cosine).
        metric: ``"cosine"`` or ``"euclidean"``.
        unit: The index's tie grid (distances are reported on it).
        seed: Draws the two disjoint samples of query rows.
        target: Recall@10 both samples must reach (a margin of 0.002 on the tuning one).
        n_tune: Rows in the tuning sample.
        n_eval: Rows in the held-out sample whose recall is reported.

    Returns:
        ``(held-out recall@10, queries behind it, [(nprobe, tuning recall), ...])``.
    """
    n = len(X)
    k = min(RECALL_K, n - 1)
    rng = np.random.default_rng(seed)
    n_tune = min(n_tune, n // 3)
    n_eval = min(n_eval, n - n_tune)
    sample = rng.choice(n, size=n_tune + n_eval, replace=False)
    tune_rows, eval_rows = sample[:n_tune], sample[n_tune:]
    kth_tune = exact_kth_distance(X, tune_rows, k, metric, unit=unit)
    kth_eval = exact_kth_distance(X, eval_rows, k, metric, unit=unit)
    curve: list[tuple[int, float]] = []
    nprobe, held_out = 1, float("nan")
    while True:
        index.nprobe = nprobe
        tuned = recall_at_k(query_rows(tune_rows, k)[0], kth_tune, unit=unit) if n_tune else 1.0
        curve.append((nprobe, tuned))
        if tuned >= min(1.0, target + 0.002) or nprobe >= index.nlist:
            held_out = recall_at_k(query_rows(eval_rows, k)[0], kth_eval, unit=unit)
            if held_out >= target or nprobe >= index.nlist:
                break
        nprobe = min(index.nlist, 2 * nprobe)
    log.info("approximate kNN: nprobe %d of %d lists, recall@%d %.4f on %d held-out queries",
             nprobe, index.nlist, k, held_out, n_eval)
    return held_out, n_eval, curve
