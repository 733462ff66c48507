"""2-D maps of an embedding (PCA, UMAP, t-SNE) with their parameters, seed and library versions.

PCA standardises each dimension to unit variance by default (``standardize=True``): descriptor
embeddings mix units (Magpie's columns span 1 to thousands), and unscaled PCA then shows the
largest-valued column, not the structure. ``standardize=False`` gives the classic centred-only PCA
in the embedding's own units. UMAP/t-SNE see the raw rows. Each method's parameters and defaults
live in the signature of its function in :data:`PROJECTIONS`, so the scaling is a parameter and
part of the cache key. A projection is addressed by
``(embedding key, method, params, seed)`` in the store, so a repeated request is a file read.
The methods live in :mod:`~crystalrep.analysis.projection_methods`; UMAP's and t-SNE's neighbour
graph is exact (faiss) up to 50,000 rows and approximate above (``knn="auto"``), and each
projection records which search ran (``Projection.neighbors``, ``"neighbors"`` in its metadata).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from crystalrep.analysis.knn_graph import EXACT_KNN_MAX, neighbour_method
from crystalrep.analysis.projection_methods import CHOICES, LIBRARIES, PROJECTIONS
from crystalrep.store import Store, content_key

__all__ = ["EXACT_KNN_MAX", "PROJECTIONS", "Projection", "ProjectionSpec", "cache_key", "defaults", "make_spec",
           "neighbour_method", "project", "project_cached", "resolve_params", "run_spec"]

log = logging.getLogger(__name__)
KIND = "projections"
_RUNTIME = ("seed", "n_jobs")  # keyword arguments of every method that are not parameters


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
        neighbors: The neighbour search the map was built on (see
            :func:`~crystalrep.analysis.knn_graph.neighbour_method`): ``"none"`` for PCA,
            ``"exact (faiss)"``, ``"approximate (NN-descent)"``, ...
    """

    coords: np.ndarray
    method: str
    params: dict[str, Any]
    seed: int | None
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)
    from_cache: bool = False
    neighbors: str = ""

    @property
    def spec(self) -> ProjectionSpec:
        """The request this projection answers."""
        return ProjectionSpec(self.method, tuple(sorted(self.params.items())), self.seed)

    def meta(self) -> dict[str, Any]:
        """JSON-ready record of how the coordinates were made."""
        return {**self.spec.as_dict(), "seconds": self.seconds, "versions": self.versions, "n": len(self.coords),
                "neighbors": self.neighbors}


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
                      seconds, _versions(spec.method), neighbors=neighbour_method(spec.method, dict(spec.params), len(X)))


def project(X: np.ndarray, *, method: str, params: Mapping[str, Any] | None = None, seed: int | None = 0,
            n_jobs: int = 1) -> Projection:
    """Project an embedding ``[n, d]`` to 2-D.

    Args:
        X: Embedding rows.
        method: ``"pca"``, ``"umap"`` or ``"tsne"`` (keys of :data:`PROJECTIONS`).
        params: Method parameters; missing ones take the defaults of the method's function
            (see :func:`defaults`). ``knn`` (UMAP, t-SNE) is ``"exact"`` (faiss brute force),
            ``"approx"`` (umap-learn's NN-descent / openTSNE's Annoy) or ``"auto"`` (exact up to
            50,000 rows, approximate above): exact is more faithful, faster here at these sizes,
            and spares UMAP ~35 s of uncacheable numba compilation per fresh process. The
            result's ``neighbors`` says which search ran.
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
    computed: list[Projection] = []

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        computed.append(run_spec(X, spec, n_jobs=n_jobs))
        return computed[0].coords, {**computed[0].meta(), "embedding_key": embedding_key}

    def fits(coords: np.ndarray, meta: dict[str, Any]) -> bool:
        if coords.shape == (len(X), 2):
            return True
        log.warning("cached projection has shape %s, expected (%d, 2); recomputing", coords.shape, len(X))
        return False

    coords, meta, hit = store.memo_array(KIND, cache_key(embedding_key, spec), compute, accept=fits)
    if not hit:
        return computed[0]
    neighbors = meta.get("neighbors")  # absent from maps stored before it was recorded: derived from the spec
    return Projection(coords.astype(np.float32, copy=False), spec.method, dict(spec.params), spec.seed,
                      float(meta.get("seconds", float("nan"))), meta.get("versions", {}), from_cache=True,
                      neighbors=neighbors if isinstance(neighbors, str) else neighbour_method(
                          spec.method, dict(spec.params), len(X)))
