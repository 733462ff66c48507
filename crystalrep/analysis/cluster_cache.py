"""Clusters, the HDBSCAN size sweep and novelty scores of an embedding, each cached in the store.

``crystalrep cluster`` and the Clusters page call the same functions with the same keys, so a
result computed by a background task (or a previous server) is read back, not recomputed. Keys
are what made the result: the embedding's store key (dataset fingerprint + encoder fingerprint)
and the clusterer's parameters. Three kinds: :data:`KIND` (labels + summary), :data:`SWEEP_KIND`
(one ``min_cluster_size`` of the sweep) and :data:`NOVELTY_KIND` (scores + flagged rows).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.analysis import clusters
from crystalrep.analysis.clusters import ClusterResult, Novelty
from crystalrep.device import cores
from crystalrep.store import Store, content_key

__all__ = ["AGREEMENT_KIND", "KIND", "NOVELTY_KIND", "SWEEP_KIND", "agreement_key", "ami_cached", "clusters_cached", "clusters_key", "is_stored", "novelty_cached",
           "novelty_key", "sweep_cached", "sweep_key"]

KIND = "clusters"
SWEEP_KIND = "cluster_sweeps"
NOVELTY_KIND = "novelty"
AGREEMENT_KIND = "cluster_agreement"
CACHE_VERSION = 1
_SWEEP_COLUMNS = ["min_cluster_size", "n_clusters", "noise_fraction"]
# From here the sweep's sizes run in worker processes: HDBSCAN of 200k crystals takes ~26 s a size on
# 10 principal components, against ~1 s to start a worker; below it the sizes take seconds in all.
PARALLEL_ROWS = 5_000


def clusters_key(embedding_key: str, *, method: str, min_cluster_size: int = 15, min_samples: int | None = None,
                 k: int | None = None, k_range: Sequence[int] = range(2, 13), seed: int = 0,
                 pca_dims: int | None = None) -> str:
    """Store key of one clustering: the embedding and the parameters its method reads (the others are ignored).

    ``pca_dims`` is the resolved value (:func:`~crystalrep.analysis.clusters.hdbscan_pca_dims` of the
    row count by default); it joins the key only when set, so keys of full-embedding runs are unchanged.
    """
    if method == "hdbscan":
        params: dict[str, Any] = {"min_cluster_size": int(min_cluster_size), "min_samples": min_samples}
        if pca_dims is not None:
            params["pca_dims"] = int(pca_dims)
    elif method == "kmeans":
        params = {"k": None if k is None else int(k), "k_range": sorted({int(v) for v in k_range}), "seed": int(seed)}
    else:
        raise ValueError(f"unknown clusterer {method!r}; choose hdbscan or kmeans.")
    return content_key({"v": CACHE_VERSION, "embedding": embedding_key, "method": method, **params})


def sweep_key(embedding_key: str, size: int, *, min_samples: int | None = None, pca_dims: int | None = None) -> str:
    """Store key of one ``min_cluster_size`` of the HDBSCAN sweep (``pca_dims`` as in :func:`clusters_key`)."""
    extra = {} if pca_dims is None else {"pca_dims": int(pca_dims)}
    return content_key({"v": CACHE_VERSION, "embedding": embedding_key, "min_cluster_size": int(size),
                        "min_samples": min_samples, **extra})


def resolved_pca_dims(pca_dims: int | None | str, n: int) -> int | None:
    """``pca_dims`` with ``"auto"`` replaced by the default for ``n`` rows and 0 by ``None`` (the embedding itself)."""
    if pca_dims == "auto":
        return clusters.hdbscan_pca_dims(n)
    if pca_dims is None or pca_dims == 0:
        return None
    return int(pca_dims)


def novelty_key(embedding_key: str, *, k: int = 10, top: float = 0.01, metric: str = "euclidean") -> str:
    """Store key of the novelty scores (distance to the k-th neighbour, the top fraction flagged)."""
    return content_key({"v": CACHE_VERSION, "embedding": embedding_key, "k": int(k), "top": float(top),
                        "metric": metric})


def agreement_key(labels_pred: np.ndarray, labels_true: Sequence[Any] | np.ndarray | pd.Series) -> str:
    """Store key of the agreement of two labellings: a digest of each (the cluster labels, the label column)."""
    import hashlib

    pred = np.ascontiguousarray(np.asarray(labels_pred, dtype=np.int64))
    true = pd.util.hash_pandas_object(pd.Series(np.asarray(labels_true, dtype=object)), index=False).to_numpy()
    return content_key({"v": CACHE_VERSION, "pred": hashlib.sha256(pred.tobytes()).hexdigest(),
                        "true": hashlib.sha256(np.ascontiguousarray(true).tobytes()).hexdigest()})


def ami_cached(labels_pred: np.ndarray, labels_true: Sequence[Any] | np.ndarray | pd.Series, *,
               store: Store | None = None) -> tuple[float, bool]:
    """:func:`~crystalrep.analysis.clusters.adjusted_mutual_info`, stored; returns ``(ami, from_cache)``.

    Its expected-mutual-information term grows with clusters x classes: 4,009 HDBSCAN clusters of
    200,000 crystals against 7 crystal systems take about 2 s, on every cold server without the store.
    """
    value, hit = (store if store is not None else Store()).memo_json(
        AGREEMENT_KIND, agreement_key(labels_pred, labels_true),
        lambda: {"ami": clusters.adjusted_mutual_info(labels_pred, labels_true)},
        accept=lambda v: isinstance(v, dict) and isinstance(v.get("ami"), (int, float)))
    return float(value["ami"]), hit


def is_stored(kind: str, key: str, *, store: Store | None = None) -> bool:
    """Whether the store holds a verified artifact ``(kind, key)``; nothing is computed."""
    return (store if store is not None else Store()).verified(kind, key) is not None


def clusters_cached(X: np.ndarray, embedding_key: str, *, method: str, min_cluster_size: int = 15,
                    min_samples: int | None = None, k: int | None = None, k_range: Sequence[int] = range(2, 13),
                    seed: int = 0, pca_dims: int | None | str = "auto",
                    store: Store | None = None) -> tuple[ClusterResult, bool]:
    """:func:`~crystalrep.analysis.clusters.hdbscan_clusters` or ``kmeans_clusters`` of ``X``, read from the store when it holds them.

    Args:
        X: The embedding ``(n, d)`` stored under ``embedding_key``.
        embedding_key: Its store key.
        method: ``"hdbscan"`` or ``"kmeans"``.
        min_cluster_size: HDBSCAN's smallest cluster.
        min_samples: HDBSCAN's core-distance neighbourhood (``None``: ``min_cluster_size``).
        k: k-means' k, or ``None`` for the best silhouette in ``k_range``.
        k_range: The k values k-means scores.
        seed: k-means' seed.
        pca_dims: HDBSCAN on this many principal components; ``"auto"`` (the default for the row
            count, :func:`~crystalrep.analysis.clusters.hdbscan_pca_dims`), or ``None``/0 for the embedding itself.
        store: Artifact store (default ``$CRYSTALREP_HOME``).

    Returns:
        ``(result, from_cache)``; a stored result has the same labels and numbers as a fresh one.
    """
    dims = resolved_pca_dims(pca_dims, len(X)) if method == "hdbscan" else None
    key = clusters_key(embedding_key, method=method, min_cluster_size=min_cluster_size, min_samples=min_samples,
                       k=k, k_range=k_range, seed=seed, pca_dims=dims)

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        if method == "hdbscan":
            result = clusters.hdbscan_clusters(X, min_cluster_size=min_cluster_size, min_samples=min_samples,
                                               pca_dims=dims)
        else:
            result = clusters.kmeans_clusters(X, k=k, k_range=k_range, seed=seed)
        return result.labels.astype(np.int64), {"embedding_key": embedding_key, "result": result.to_dict()}

    labels, meta, hit = (store if store is not None else Store()).memo_array(
        KIND, key, compute, accept=lambda a, m: isinstance(m.get("result"), dict) and a.ndim == 1)
    fields = meta["result"]
    return ClusterResult(method=fields["method"], labels=labels, n_clusters=int(fields["n_clusters"]),
                         noise_fraction=float(fields["noise_fraction"]), silhouette=float(fields["silhouette"]),
                         params=dict(fields["params"]),
                         scores={int(kk): float(v) for kk, v in fields["scores"].items()}), hit


def _sweep_rows(space: np.ndarray, size: int, min_samples: int | None) -> tuple[int, list[dict[str, Any]]]:
    """One size of the sweep (module level, so a worker process can run it).

    A worker gets a big ``space`` as joblib's read-only memory map, which hdbscan's Cython code
    refuses ("cannot create writable memory view"): that one is copied.
    """
    space = np.require(space, requirements="W")
    return size, clusters.cluster_sweep(space, [size], min_samples=min_samples).to_dict("records")


def sweep_cached(X: np.ndarray, embedding_key: str, sizes: Sequence[int], *, min_samples: int | None = None,
                 pca_dims: int | None | str = "auto", store: Store | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 known: Mapping[int, ClusterResult] | None = None, n_jobs: int | None = None) -> pd.DataFrame:
    """:func:`~crystalrep.analysis.clusters.cluster_sweep` of ``X``, one stored artifact per size (so a sweep resumes where it stopped).

    From :data:`PARALLEL_ROWS` rows the sizes not yet stored run in worker processes, one per core
    (each HDBSCAN single-threaded, so every size gives the labels it gives alone); each is stored as it
    finishes.

    Args:
        X: The embedding stored under ``embedding_key``.
        embedding_key: Its store key.
        sizes: ``min_cluster_size`` values (those outside ``2..n`` give no row).
        min_samples: HDBSCAN's core-distance neighbourhood.
        pca_dims: As in :func:`clusters_cached`.
        store: Artifact store (default ``$CRYSTALREP_HOME``).
        progress: Called as ``progress(done, total)`` with the sizes done: 0 first, then after each size.
        known: HDBSCAN results already computed on the same space with the same ``min_samples``
            (``crystalrep cluster``'s own run), by ``min_cluster_size``: their counts are stored, not
            computed again.
        n_jobs: Worker processes (default: every core from :data:`PARALLEL_ROWS` rows, else none).
    """
    store = store if store is not None else Store()
    dims = resolved_pca_dims(pca_dims, len(X))
    space = functools.cache(lambda: clusters.hdbscan_space(X, dims))  # reduced once, only if a size runs
    keys = {int(size): sweep_key(embedding_key, size, min_samples=min_samples, pca_dims=dims) for size in sizes}
    ready: dict[int, list[dict[str, Any]]] = {
        int(size): [{"min_cluster_size": int(size), "n_clusters": r.n_clusters, "noise_fraction": r.noise_fraction}]
        for size, r in (known or {}).items() if int(size) in keys and 2 <= int(size) <= len(X)}
    done = 0

    def tick() -> None:
        if progress is not None:
            progress(done, len(sizes))

    def accept(value: Any) -> bool:
        return isinstance(value, list)

    tick()
    todo = [size for size in dict.fromkeys(keys) if size not in ready and 2 <= size <= len(X)
            and store.verified(SWEEP_KIND, keys[size]) is None]
    jobs = min(len(todo), n_jobs if n_jobs is not None else cores() if len(X) >= PARALLEL_ROWS else 1)
    counted: set[int] = set()
    if jobs > 1:
        from joblib import Parallel, delayed

        runs = Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(_sweep_rows)(space(), size, min_samples) for size in todo)
        for size, value in runs:
            ready[size] = value
            store.memo_json(SWEEP_KIND, keys[size], functools.partial(list, value), accept=accept)
            counted.add(size)
            done += 1
            tick()
    def rows_of(size: int) -> list[dict[str, Any]]:
        return ready[size] if size in ready else _sweep_rows(space(), size, min_samples)[1]

    rows: list[dict[str, Any]] = []
    for size in map(int, sizes):
        value, _ = store.memo_json(SWEEP_KIND, keys[size], functools.partial(rows_of, size), accept=accept)
        rows.extend(value)
        if size not in counted:
            done += 1
            tick()
    return pd.DataFrame(rows, columns=_SWEEP_COLUMNS).astype({"min_cluster_size": int, "n_clusters": int,
                                                              "noise_fraction": float})


def novelty_cached(X: np.ndarray, embedding_key: str, *, k: int = 10, top: float = 0.01, metric: str = "euclidean",
                   store: Store | None = None) -> tuple[Novelty, bool]:
    """:func:`~crystalrep.analysis.clusters.novelty` of ``X``, read from the store when it holds it; returns ``(novelty, from_cache)``."""
    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        nov = clusters.novelty(X, k=k, top=top, metric=metric)
        return nov.scores, {"embedding_key": embedding_key, "threshold": nov.threshold, "k": nov.k,
                            "metric": nov.metric, "flagged": np.flatnonzero(nov.flagged).tolist()}

    scores, meta, hit = (store if store is not None else Store()).memo_array(
        NOVELTY_KIND, novelty_key(embedding_key, k=k, top=top, metric=metric), compute,
        accept=lambda a, m: isinstance(m.get("flagged"), list) and a.ndim == 1)
    flagged = np.zeros(len(scores), dtype=bool)
    flagged[np.asarray(meta["flagged"], dtype=np.int64)] = True
    return Novelty(scores=scores, flagged=flagged, threshold=float(meta["threshold"]), k=int(meta["k"]),
                   metric=str(meta["metric"])), hit
