"""Clusters and outliers in an embedding (or a 2-D map): HDBSCAN, k-means, agreement, novelty.

HDBSCAN comes from the ``hdbscan`` package (McInnes et al.), not ``sklearn.cluster.HDBSCAN``:
same algorithm and labels, but its tree-based core distances and Borůvka spanning tree make it
about 10x faster on a 50k-point 2-D map here. Its trees prune little in many dimensions: on a 64-d
embedding it took 4.9 s at 10k rows, 141 s at 50k and over 10 minutes at 200k (2 cores,
``benchmarks/BENCHMARKS.md``, ``clusters-scale``). Above :data:`PCA_ABOVE` rows it therefore runs on
the first :data:`PCA_DIMS` principal components of the embedding (50k × 64: 4 s instead of 200 s,
same partition on that benchmark's mixture); the result's ``params["pca_dims"]`` says so, and the
silhouette is still measured in the embedding itself. HDBSCAN has cliffs — the cluster count can jump
as ``min_cluster_size`` changes — so :func:`cluster_sweep` shows the curve instead of one number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CLUSTERERS", "ClusterResult", "Novelty", "adjusted_mutual_info", "cluster", "cluster_sweep",
    "crosstab", "hdbscan_clusters", "hdbscan_pca_dims", "hdbscan_space", "kmeans_clusters", "novelty", "silhouette",
]

SILHOUETTE_SAMPLE = 2000
PCA_ABOVE = 20_000  # rows above which HDBSCAN clusters principal components (see the module docstring)
PCA_DIMS = 10


def hdbscan_pca_dims(n: int) -> int | None:
    """Principal components HDBSCAN clusters on for ``n`` rows by default: :data:`PCA_DIMS` above :data:`PCA_ABOVE`, else ``None`` (the embedding)."""
    return PCA_DIMS if n > PCA_ABOVE else None


def hdbscan_space(X: np.ndarray, pca_dims: int | None) -> np.ndarray:
    """What HDBSCAN clusters: ``X`` itself, or its first ``pca_dims`` principal components (when fewer than its columns)."""
    X = _array(X)
    if pca_dims is None or pca_dims >= X.shape[1] or pca_dims >= len(X):
        return X
    if pca_dims < 1:
        raise ValueError(f"pca_dims must be a positive number of components, got {pca_dims}.")
    from sklearn.decomposition import PCA

    # the covariance route: a d x d eigenproblem, deterministic, memory linear in n
    return PCA(n_components=pca_dims, svd_solver="covariance_eigh").fit_transform(X)


@dataclass(frozen=True)
class ClusterResult:
    """Cluster labels and their summary.

    Attributes:
        method: Name in :data:`CLUSTERERS`.
        labels: Cluster per row; ``-1`` marks HDBSCAN noise.
        n_clusters: Clusters found (noise excluded).
        noise_fraction: Fraction of rows labelled noise.
        silhouette: Silhouette of the non-noise rows (NaN with fewer than 2 clusters).
        params: Parameters used (for k-means including the chosen ``k``).
        scores: k-means only: silhouette for each k tried.
    """

    method: str
    labels: np.ndarray
    n_clusters: int
    noise_fraction: float
    silhouette: float
    params: dict[str, Any] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)

    def to_dict(self, *, labels: bool = False) -> dict[str, Any]:
        """Plain-JSON summary; the per-row labels only when asked for."""
        out = {"method": self.method, "n_clusters": self.n_clusters, "noise_fraction": self.noise_fraction,
               "silhouette": self.silhouette, "params": dict(self.params),
               "scores": {str(k): v for k, v in self.scores.items()}}
        return {**out, "labels": self.labels.tolist()} if labels else out


def _array(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"clustering needs a 2-D array with at least 2 rows, got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("the embedding contains NaN or infinite values.")
    return X


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed subsample (the same rows for every call with equal n, size and seed)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def silhouette(X: np.ndarray, labels: np.ndarray, *, sample_size: int = SILHOUETTE_SAMPLE, seed: int = 0) -> float:
    """Silhouette of the non-noise rows, on a fixed subsample of at most ``sample_size`` rows."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    keep = np.flatnonzero(labels >= 0)
    keep = keep[_sample(len(keep), sample_size, seed)]
    if len(np.unique(labels[keep])) < 2 or len(np.unique(labels[keep])) >= len(keep):
        return float("nan")
    return float(silhouette_score(X[keep], labels[keep]))


def _summary(method: str, X: np.ndarray, labels: np.ndarray, params: dict[str, Any],
             scores: dict[int, float] | None = None, score: float | None = None) -> ClusterResult:
    labels = np.asarray(labels, dtype=np.int64)
    return ClusterResult(
        method=method,
        labels=labels,
        n_clusters=int(len(np.unique(labels[labels >= 0]))),
        noise_fraction=float(np.mean(labels < 0)),
        silhouette=silhouette(X, labels) if score is None else score,
        params=params,
        scores=dict(scores or {}),
    )


def hdbscan_clusters(X: np.ndarray, *, min_cluster_size: int = 15, min_samples: int | None = None,
                     pca_dims: int | None = None) -> ClusterResult:
    """Density clusters with HDBSCAN (the ``hdbscan`` package; see the module docstring).

    Args:
        X: Points ``(n, d)``: an embedding or a 2-D map.
        min_cluster_size: Smallest group called a cluster.
        min_samples: Neighbourhood size of the core distance (HDBSCAN uses ``min_cluster_size``
            when ``None``); larger values call more points noise.
        pca_dims: Cluster the first ``pca_dims`` principal components of ``X`` instead of ``X``
            (``None``: ``X`` itself; :func:`hdbscan_pca_dims` gives the default for a row count).
            Recorded in ``params``; the silhouette is measured on ``X``.
    """
    import hdbscan

    X = _array(X)
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, core_dist_n_jobs=1)
    space = hdbscan_space(X, pca_dims)
    labels = model.fit_predict(space)
    params: dict[str, Any] = {"min_cluster_size": min_cluster_size, "min_samples": min_samples}
    if space.shape[1] < X.shape[1]:  # recorded only when the components were fewer than the embedding's columns
        params["pca_dims"] = space.shape[1]
    return _summary("hdbscan", X, labels, params)


def kmeans_clusters(X: np.ndarray, *, k: int | None = None, k_range: Sequence[int] = range(2, 13),
                    seed: int = 0) -> ClusterResult:
    """k-means for each k in ``k_range``: the given ``k``, or (``None``) the k with the best silhouette.

    The silhouette of every k tried is reported in ``scores`` either way, so a chosen k is always
    seen against the others. It is measured on one fixed subsample (at most 2,000 rows) for every
    k, so it is comparable across k and affordable for large N. ``params["k_source"]`` says
    whether k was ``"given"`` or picked by ``"silhouette"``.

    Raises:
        ValueError: ``k`` (or every k of ``k_range``) outside ``2 <= k < n``.
    """
    from sklearn.cluster import KMeans

    X = _array(X)
    if k is not None and not 2 <= k < len(X):
        raise ValueError(f"k = {k} does not fit {len(X)} rows (need 2 <= k < n).")
    ks = sorted({int(v) for v in k_range if 2 <= v < len(X)} | ({int(k)} if k is not None else set()))
    if not ks:
        raise ValueError(f"no k in {list(k_range)} fits {len(X)} rows (need 2 <= k < n).")
    scores: dict[int, float] = {}
    fits: dict[int, np.ndarray] = {}
    for kk in ks:
        fits[kk] = KMeans(n_clusters=kk, n_init=4, random_state=seed).fit_predict(X)
        scores[kk] = silhouette(X, fits[kk], seed=seed)
    chosen = int(k) if k is not None else max(ks, key=lambda v: (np.nan_to_num(scores[v], nan=-np.inf), -v))
    source = "given" if k is not None else "silhouette"
    return _summary("kmeans", X, fits[chosen], {"k": chosen, "k_source": source, "seed": seed}, scores=scores,
                    score=scores[chosen])


CLUSTERERS: dict[str, Callable[..., ClusterResult]] = {
    "hdbscan": hdbscan_clusters,
    "kmeans": kmeans_clusters,
}


def cluster(X: np.ndarray, method: str = "hdbscan", **params: Any) -> ClusterResult:
    """Run a clusterer from :data:`CLUSTERERS` by name with its keyword parameters."""
    if method not in CLUSTERERS:
        raise ValueError(f"unknown clusterer {method!r}; choose one of {', '.join(CLUSTERERS)}.")
    return CLUSTERERS[method](X, **params)


def cluster_sweep(X: np.ndarray, sizes: Sequence[int] = (5, 10, 15, 25, 50, 100), *,
                  min_samples: int | None = None, pca_dims: int | None = None) -> pd.DataFrame:
    """HDBSCAN cluster count and noise fraction for each ``min_cluster_size`` (sizes > n skipped).

    ``pca_dims`` as in :func:`hdbscan_clusters` (the reduction is computed once for all sizes).
    """
    import hdbscan

    X = _array(X)
    X = hdbscan_space(X, pca_dims) if any(2 <= size <= len(X) for size in sizes) else X
    rows = []
    for size in sizes:
        if not 2 <= size <= len(X):
            continue
        labels = hdbscan.HDBSCAN(min_cluster_size=int(size), min_samples=min_samples, core_dist_n_jobs=1).fit_predict(X)
        rows.append({"min_cluster_size": int(size), "n_clusters": int(len(np.unique(labels[labels >= 0]))),
                     "noise_fraction": float(np.mean(labels < 0))})
    return pd.DataFrame(rows, columns=["min_cluster_size", "n_clusters", "noise_fraction"])


def _labelled(labels_pred: Sequence[Any] | np.ndarray, labels_true: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, true = pd.Series(np.asarray(labels_pred)), pd.Series(np.asarray(labels_true, dtype=object))
    if len(pred) != len(true):
        raise ValueError(f"{len(pred)} cluster labels for {len(true)} reference labels.")
    known = true.notna().to_numpy()
    return pred.to_numpy()[known], true.astype(str).to_numpy()[known]


def crosstab(labels_pred: Sequence[Any] | np.ndarray, labels_true: Sequence[Any] | np.ndarray) -> pd.DataFrame:
    """Counts of rows per (cluster, label); rows with a missing label are left out."""
    pred, true = _labelled(labels_pred, labels_true)
    return pd.crosstab(pd.Series(pred, name="cluster"), pd.Series(true, name="label"))


def adjusted_mutual_info(labels_pred: Sequence[Any] | np.ndarray, labels_true: Sequence[Any] | np.ndarray) -> float:
    """Adjusted mutual information (sklearn); noise (-1) counts as one more cluster."""
    from sklearn.metrics import adjusted_mutual_info_score

    pred, true = _labelled(labels_pred, labels_true)
    return float(adjusted_mutual_info_score(true, pred)) if len(true) else float("nan")


@dataclass(frozen=True)
class Novelty:
    """Novelty scores: distance to the k-th nearest neighbour; the largest ``top`` flagged."""

    scores: np.ndarray
    flagged: np.ndarray
    threshold: float
    k: int
    metric: str


def novelty(X: np.ndarray, k: int = 10, top: float = 0.01, *, metric: str = "euclidean") -> Novelty:
    """Score each row by the distance to its k-th nearest neighbour (itself excluded).

    Args:
        X: Embedding ``(n, d)``.
        k: Which neighbour's distance is the score.
        top: Fraction flagged as novel (at least one row).
        metric: ``"euclidean"`` or ``"cosine"``.
    """
    from crystalrep.analysis.retrieval import KnnIndex

    if not 0 < top <= 1:
        raise ValueError(f"top must be a fraction in (0, 1], got {top}.")
    X = _array(X)
    dist, _ = KnnIndex(metric=metric).fit(X).query(k=k)
    scores = dist[:, -1].astype(np.float64)
    n_flag = max(1, math.ceil(top * len(scores)))
    order = np.argsort(-scores, kind="stable")
    flagged = np.zeros(len(scores), dtype=bool)
    flagged[order[:n_flag]] = True
    return Novelty(scores=scores, flagged=flagged, threshold=float(scores[order[n_flag - 1]]), k=dist.shape[1], metric=metric)
