"""2-D maps of an embedding (PCA, UMAP, t-SNE) with their parameters, seed and library versions.

PCA standardises each dimension to unit variance by default (``standardize=True``): descriptor
embeddings mix units (Magpie's columns span 1 to thousands), and unscaled PCA then shows the
largest-valued column, not the structure. ``standardize=False`` gives the classic centred-only PCA
in the embedding's own units. UMAP/t-SNE see the raw rows. Each method's parameters and defaults
live in the signature of its function in :data:`PROJECTIONS`, so the scaling is a parameter and
part of the cache key. A projection is addressed by
``(embedding key, method, params, seed)`` in the store, so a repeated request is a file read.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from crystalrep.store import Store, content_key, crystalrep_home

__all__ = ["PROJECTIONS", "Projection", "ProjectionSpec", "cache_key", "defaults", "make_spec", "project",
           "project_cached", "resolve_params", "run_spec"]

log = logging.getLogger(__name__)
KIND = "projections"
_RUNTIME = ("seed", "n_jobs")  # keyword arguments of every method that are not parameters


def _pca(X: np.ndarray, *, seed: int | None, n_jobs: int, standardize: bool = True) -> np.ndarray:
    from sklearn.decomposition import PCA

    if standardize:
        from sklearn.preprocessing import StandardScaler

        X = StandardScaler().fit_transform(X)  # a constant column stays 0 (scale 1), not NaN
    return PCA(n_components=2, random_state=seed).fit_transform(X)


EXACT_KNN_MAX = 50_000  # knn="auto": brute force (O(n²)) up to here, the library's approximate search above


def _exact(knn: str, n: int) -> bool:
    return knn == "exact" or (knn == "auto" and n <= EXACT_KNN_MAX)


def _umap(X: np.ndarray, *, seed: int | None, n_jobs: int, n_neighbors: int = 15,
          min_dist: float = 0.1, metric: str = "euclidean", knn: str = "auto") -> np.ndarray:
    _persist_numba_cache()
    import umap

    graph = None
    # Below 4096 rows umap-learn finds exact neighbours itself. Above, NNDescent costs ~35 s of
    # numba compilation per fresh process (not cacheable); brute force costs seconds.
    if _exact(knn, len(X)) and len(X) >= 4096:
        from sklearn.neighbors import NearestNeighbors

        search = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", metric=metric, n_jobs=n_jobs)
        dist, idx = search.fit(X).kneighbors(X)
        graph = (idx.astype(np.int32), dist.astype(np.float32), None)
    # seeded umap-learn runs single-threaded anyway (and warns if asked for more)
    model = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                      random_state=seed, n_jobs=1 if seed is not None else n_jobs, precomputed_knn=graph or (None,) * 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        return model.fit_transform(X)


def _tsne(X: np.ndarray, *, seed: int | None, n_jobs: int, perplexity: float = 30.0,
          early_exaggeration_iter: int = 250, n_iter: int = 500, exaggeration: float = 1.0,
          metric: str = "euclidean", negative_gradient_method: str = "auto", knn: str = "auto",
          ints_in_interval: int = 1) -> np.ndarray:
    import openTSNE

    # "auto" is openTSNE's rule: Barnes-Hut below 10,000 rows, FFT from there. FFT's grid cost
    # does not shrink with n, so below ~10k it is slower (300 rows: 6.5 s vs 1.7 s here).
    # Exact kNN: 2.4 s vs Annoy's 5.8 s at 20k×64 here. ints_in_interval=2 halves the FFT grid
    # per axis (20k: 17 s vs 32 s) for a slightly worse KL (+2 %); FIt-SNE's default is 1.
    tsne = openTSNE.TSNE(n_components=2, perplexity=perplexity, early_exaggeration_iter=early_exaggeration_iter,
                         n_iter=n_iter, exaggeration=exaggeration, metric=metric, initialization="pca",
                         negative_gradient_method=negative_gradient_method, ints_in_interval=ints_in_interval,
                         neighbors="exact" if _exact(knn, len(X)) else "auto", n_jobs=n_jobs, random_state=seed)
    return np.asarray(tsne.fit(X))


PROJECTIONS: dict[str, Callable[..., np.ndarray]] = {"pca": _pca, "umap": _umap, "tsne": _tsne}
LIBRARIES = {"pca": ("scikit-learn",), "umap": ("umap-learn", "pynndescent", "numba"), "tsne": ("openTSNE",)}
CHOICES = {"knn": ("auto", "exact", "approx"), "negative_gradient_method": ("auto", "fft", "bh")}


def _persist_numba_cache() -> None:
    """Point numba's on-disk cache at the store, so compiled UMAP code survives the process."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(crystalrep_home() / "numba")
    if "numba" in sys.modules:  # numba reads its config at import; re-read it
        from numba.core import config

        config.reload_config()


def _method(method: str) -> Callable[..., np.ndarray]:
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection method {method!r}; valid: {', '.join(PROJECTIONS)}.")
    return PROJECTIONS[method]


def defaults(method: str) -> dict[str, Any]:
    """The parameters of ``method`` and their defaults (read from its function's signature)."""
    sig = inspect.signature(_method(method))
    return {k: p.default for k, p in sig.parameters.items()
            if p.kind is p.KEYWORD_ONLY and k not in _RUNTIME}


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _coerce(method: str, name: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if kind is bool:  # bool("False") is True: read the words, and accept only real flags
        flag = _BOOLS.get(value.strip().lower()) if isinstance(value, str) else value
        if not isinstance(flag, bool | np.bool_):
            raise ValueError(f"{method} parameter {name} must be true or false, got {value!r}.")
        return bool(flag)
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        out = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{method} parameter {name} must be {kind.__name__}, got {value!r}.") from None
    if isinstance(value, bool) or (kind is str and not isinstance(value, str)):
        raise ValueError(f"{method} parameter {name} must be {kind.__name__}, got {value!r}.")
    if name in CHOICES and out not in CHOICES[name]:
        raise ValueError(f"{method} parameter {name} must be one of {', '.join(CHOICES[name])}, got {value!r}.")
    return out


def resolve_params(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Complete ``params`` with the method's defaults and convert values to the defaults' types.

    Raises:
        ValueError: Unknown method or parameter (the message lists the valid ones), or a value
            that cannot be converted (``"15"`` becomes ``15``; ``1.5`` for an int does not).
    """
    full = defaults(method)
    unknown = sorted(set(params or {}) - set(full))
    if unknown:
        valid = ", ".join(full) or "none"
        raise ValueError(f"unknown {method} parameter(s) {', '.join(unknown)}; valid: {valid}.")
    for name, value in (params or {}).items():
        full[name] = _coerce(method, name, value, full[name])
    return full


@dataclass(frozen=True)
class ProjectionSpec:
    """What makes a projection: method, complete parameters (sorted pairs) and seed."""

    method: str
    params: tuple[tuple[str, Any], ...]
    seed: int | None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (also the cache-key payload)."""
        return {"method": self.method, "params": dict(self.params), "seed": self.seed}


def make_spec(method: str, params: Mapping[str, Any] | None = None, seed: int | None = 0) -> ProjectionSpec:
    """Validate and complete a request; the same map always yields the same spec."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    full = resolve_params(method, params)
    return ProjectionSpec(method, tuple(sorted(full.items())), None if seed is None else int(seed))


@dataclass(frozen=True, eq=False)
class Projection:
    """A 2-D map of an embedding and everything needed to redo it.

    Attributes:
        coords: float32 ``[n, 2]``.
        method: Name in :data:`PROJECTIONS`.
        params: Complete parameters (defaults filled in).
        seed: Random seed (``None``: unseeded, not reproducible).
        seconds: Wall time of the computation (of the original run for a cache hit).
        versions: Versions of the libraries that computed it.
        from_cache: Whether the coordinates were read from the store.
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    seed: int | None
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def spec(self) -> ProjectionSpec:
        """The request this projection answers."""
        return ProjectionSpec(self.method, tuple(sorted(self.params.items())), self.seed)

    def meta(self) -> dict[str, Any]:
        """JSON-ready record of how the coordinates were made."""
        return {**self.spec.as_dict(), "seconds": self.seconds, "versions": self.versions, "n": len(self.coords)}


def _versions(method: str) -> dict[str, str]:
    out = {"numpy": np.__version__}
    for lib in LIBRARIES[method]:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "unknown"
    return out


def _embedding(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "fiu":
        raise ValueError(f"the embedding must be numeric, got dtype {X.dtype}.")
    if X.ndim != 2 or len(X) < 3:
        raise ValueError(f"a projection needs a 2-D array with at least 3 rows, got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError("the embedding contains NaN or infinite values.")
    return X if X.dtype.kind == "f" else X.astype(np.float64)


def run_spec(X: np.ndarray, spec: ProjectionSpec, *, n_jobs: int = 1) -> Projection:
    """Compute the projection described by ``spec`` (no cache)."""
    X = _embedding(X)
    start = time.perf_counter()
    coords = PROJECTIONS[spec.method](X, seed=spec.seed, n_jobs=n_jobs, **dict(spec.params))
    seconds = time.perf_counter() - start
    log.info("%s of %d×%d in %.2f s", spec.method, *X.shape, seconds)
    return Projection(np.asarray(coords, dtype=np.float32), spec.method, dict(spec.params), spec.seed,
                      seconds, _versions(spec.method))


def project(X: np.ndarray, *, method: str, params: Mapping[str, Any] | None = None, seed: int | None = 0,
            n_jobs: int = 1) -> Projection:
    """Project an embedding ``[n, d]`` to 2-D.

    Args:
        X: Embedding rows.
        method: ``"pca"``, ``"umap"`` or ``"tsne"`` (keys of :data:`PROJECTIONS`).
        params: Method parameters; missing ones take the defaults of the method's function
            (see :func:`defaults`). ``knn`` (UMAP, t-SNE) is ``"exact"`` (brute force),
            ``"approx"`` (NNDescent / Annoy) or ``"auto"`` (exact up to 50,000 rows): exact is
            more faithful, faster here at these sizes, and spares UMAP ~35 s of uncacheable
            numba compilation per fresh process.
        seed: Random seed; the same seed gives identical coordinates. ``None`` lets UMAP's
            layout use ``n_jobs`` threads (umap-learn runs single-threaded when seeded) at the
            cost of reproducibility. PCA's result does not depend on it.
        n_jobs: Threads for t-SNE, UMAP's exact kNN and UMAP's unseeded layout.

    Raises:
        ValueError: Unknown method or parameter, or an embedding that is not finite ``[n>=3, d]``.
    """
    return run_spec(X, make_spec(method, params, seed), n_jobs=n_jobs)


def cache_key(embedding_key: str, spec: ProjectionSpec) -> str:
    """Store key of a projection: ``content_key({embedding key, method, params, seed})``."""
    return content_key({"embedding": embedding_key, **spec.as_dict()})


def project_cached(X: np.ndarray, embedding_key: str, *, method: str, params: Mapping[str, Any] | None = None,
                   seed: int | None = 0, store: Store | None = None, n_jobs: int = 1) -> Projection:
    """Like :func:`project`, but read from / written to the store under kind ``"projections"``.

    ``embedding_key`` must identify ``X`` (e.g. the embeddings artifact's key); an unseeded
    request is cached too, as the one sample that was drawn.
    """
    spec = make_spec(method, params, seed)
    store = store if store is not None else Store()
    key = cache_key(embedding_key, spec)
    hit = store.load_array(KIND, key)
    if hit is not None and hit[0].shape == (len(X), 2):
        coords, meta = hit
        return Projection(coords.astype(np.float32, copy=False), spec.method, dict(spec.params), spec.seed,
                          float(meta.get("seconds", float("nan"))), meta.get("versions", {}), from_cache=True)
    if hit is not None:
        log.warning("cached projection %s has shape %s, expected (%d, 2); recomputing", key, hit[0].shape, len(X))
    result = run_spec(X, spec, n_jobs=n_jobs)
    store.save_array(KIND, key, result.coords, {**result.meta(), "embedding_key": embedding_key})
    return result

