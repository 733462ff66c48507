"""The projection methods themselves: name -> function, each one's parameters in its signature.

Every function takes the rows, ``seed`` and ``n_jobs`` and returns ``[n, 2]`` coordinates. UMAP
and t-SNE build their neighbour graph as :mod:`crystalrep.analysis.knn_graph` says: exact with
faiss up to 50,000 rows (``knn="auto"``), the library's approximate search above.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

import numpy as np

from crystalrep.analysis.knn_graph import ANNOY_METRICS, UMAP_OWN_EXACT, exact_knn, uses_exact
from crystalrep.store import crystalrep_home

__all__ = ["CHOICES", "LIBRARIES", "PROJECTIONS", "persist_numba_cache"]


def _pca(X: np.ndarray, *, seed: int | None, n_jobs: int, standardize: bool = True) -> np.ndarray:
    from sklearn.decomposition import PCA

    if standardize:
        from sklearn.preprocessing import StandardScaler

        X = StandardScaler().fit_transform(X)  # a constant column stays 0 (scale 1), not NaN
    return PCA(n_components=2, random_state=seed).fit_transform(X)


def _umap(X: np.ndarray, *, seed: int | None, n_jobs: int, n_neighbors: int = 15,
          min_dist: float = 0.1, metric: str = "euclidean", knn: str = "auto") -> np.ndarray:
    persist_numba_cache()
    import umap

    graph = None
    # Below 4096 rows umap-learn computes all distances itself. Above, its NN-descent is cheap once
    # compiled (50k x 64: 2.1 s vs faiss's 8-10 CPU-s), but its compilation (~30 s) cannot be cached
    # on disk (its kernels take the metric as an argument) and is paid in every fresh process,
    # which is where maps are made (CLI, background jobs). Up to 50k rows faiss's exact search is
    # the cheaper of the two there, uses every core and is deterministic.
    if uses_exact(knn, len(X)) and len(X) >= UMAP_OWN_EXACT:
        idx, dist = exact_knn(X, min(n_neighbors, len(X)), metric=metric, include_self=True, n_jobs=n_jobs)
        graph = (idx.astype(np.int32), dist, None)
    # seeded umap-learn runs single-threaded anyway (and warns if asked for more)
    model = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                      random_state=seed, n_jobs=1 if seed is not None else n_jobs, precomputed_knn=graph or (None,) * 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        return model.fit_transform(X)


def _tsne(X: np.ndarray, *, seed: int | None, n_jobs: int, perplexity: float = 30.0,
          early_exaggeration_iter: int = 250, n_iter: int = 500, exaggeration: float = 1.0,
          metric: str = "euclidean", negative_gradient_method: str = "auto", knn: str = "auto",
          ints_in_interval: int = 2) -> np.ndarray:
    import openTSNE

    # "auto" is openTSNE's rule: Barnes-Hut below 10,000 rows, FFT from there. FFT's grid cost
    # does not shrink with n, so below ~10k it is slower (300 rows: 6.5 s vs 1.7 s here).
    # ints_in_interval=2 halves the FFT grid per axis (20k: 17 s vs 32 s); trustworthiness at 20k
    # stays 0.982 (sklearn's 0.983, benchmarks/BENCHMARKS.md), KL is 2 % higher. FIt-SNE's default is 1.
    neighbors: object
    if uses_exact(knn, len(X)):
        from openTSNE.nearest_neighbors import PrecomputedNeighbors

        k = min(len(X) - 1, int(3 * perplexity))  # openTSNE's own choice of k
        idx, dist = exact_knn(X, k, metric=metric, include_self=False, n_jobs=n_jobs)
        neighbors = PrecomputedNeighbors(idx, dist.astype(np.float64))
    else:
        neighbors = "annoy" if metric in ANNOY_METRICS else "pynndescent"
    tsne = openTSNE.TSNE(n_components=2, perplexity=perplexity, early_exaggeration_iter=early_exaggeration_iter,
                         n_iter=n_iter, exaggeration=exaggeration, metric=metric, initialization="pca",
                         negative_gradient_method=negative_gradient_method, ints_in_interval=ints_in_interval,
                         neighbors=neighbors, n_jobs=n_jobs, random_state=seed)
    return np.asarray(tsne.fit(X))


PROJECTIONS: dict[str, Callable[..., np.ndarray]] = {"pca": _pca, "umap": _umap, "tsne": _tsne}
LIBRARIES = {"pca": ("scikit-learn",), "umap": ("umap-learn", "pynndescent", "numba", "faiss-cpu"),
             "tsne": ("openTSNE", "faiss-cpu")}
CHOICES = {"knn": ("auto", "exact", "approx"), "negative_gradient_method": ("auto", "fft", "bh")}


def persist_numba_cache() -> None:
    """Point numba's on-disk cache at the store, so compiled UMAP code survives the process."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(crystalrep_home() / "numba")
    if "numba" in sys.modules:  # numba reads its config at import; re-read it
        from numba.core import config

        config.reload_config()
