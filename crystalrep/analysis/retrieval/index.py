"""Nearest neighbours in the full embedding space: exact below a size threshold, measured-approximate above.

Exact search uses faiss flat indices (``IndexFlatIP`` on L2-normalised rows for cosine,
``IndexFlatL2`` for euclidean), or scikit-learn's brute-force ``NearestNeighbors`` when faiss is
not installed. Above :func:`~crystalrep.analysis.retrieval.approximate.approximate_threshold`
rows (1,000,000 by default) a faiss IVF index is used, with its recall@10 against exact search
measured at fit time (:mod:`crystalrep.analysis.retrieval.approximate`). Distances are ``1 - cos``
or euclidean. Ties are broken by row index, so every backend returns the same neighbours in the
same order. Descriptor features can be standardised first (``standardise=True``): the statistics
come from the indexed rows and are applied to every query. Identical rows (composition-only
descriptors repeat a lot) are indexed and searched once, with the same answers
(:mod:`~crystalrep.analysis.retrieval.duplicates`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from crystalrep.analysis.retrieval.approximate import (
    Approximate,
    approximate_threshold,
    build_ivf,
    tune_nprobe,
)
from crystalrep.analysis.retrieval.backends import (
    BACKENDS,
    METRICS,
    Search,
    normalise,
    tie_broken,
    tie_unit,
)
from crystalrep.analysis.retrieval.duplicates import (
    RowGroups,
    grouped_tie_broken,
    groups_from_labels,
    row_groups,
)
from crystalrep.analysis.retrieval.features import Standardiser

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

__all__ = ["MIN_APPROX_ROWS", "KnnIndex"]

MIN_APPROX_ROWS = 100  # below this an IVF index saves nothing and its recall samples would be most rows
STATE_VERSION = 1  # of KnnIndex.state(): bump when what it holds or means changes
MAX_APPROX_FETCH = 4096  # candidates fetched to settle ties at the k-th place, approximate search only


class _StateError(ValueError):
    """A stored index state that cannot be used (one sentence)."""


class KnnIndex:
    """k-nearest-neighbour search over the rows of an embedding: exact, or approximate with measured recall.

    Args:
        metric: ``"cosine"`` (rows L2-normalised, distance ``1 - cos``) or ``"euclidean"``.
        backend: ``"auto"`` (faiss when importable, else sklearn), ``"faiss"`` or ``"sklearn"``.
        standardise: z-score each column with the indexed rows' mean and std (constant columns
            dropped) before distances, and apply the same transform to every query; for
            descriptor features (Magpie, SOAP), whose columns have unrelated units.
        approximate_above: Rows from which a faiss IVF index replaces exact search (default
            :func:`~crystalrep.analysis.retrieval.approximate.approximate_threshold`: 1,000,000
            or ``$CRYSTALREP_APPROX_KNN_ABOVE``); never below :data:`MIN_APPROX_ROWS`, never
            without faiss, never with ``backend="sklearn"``.
        target_recall: Recall@10 against exact search the approximate index is tuned to reach.
        seed: Seeds the IVF k-means and the query samples recall is measured on.

    Neighbours come nearest first; rows at the same distance (on the tie grid) come in row-index
    order, with every backend, so a tie at the k-th place always keeps the lower rows.

    Attributes:
        approximate_: ``None`` for exact search, else the
            :class:`~crystalrep.analysis.retrieval.approximate.Approximate` record with the
            measured ``recall_at_10``.
        standardiser_: The fitted :class:`Standardiser`, or ``None``.
        groups_: The :class:`~crystalrep.analysis.retrieval.duplicates.RowGroups` of identical
            rows, indexed once each; ``None`` when every row is distinct.

    Example:
        >>> index = KnnIndex(metric="cosine").fit(X)
        >>> dist, idx = index.query(k=10)          # each row's neighbours, itself excluded
        >>> dist, idx = index.query(Q, k=10)       # neighbours of new vectors
    """

    def __init__(self, *, metric: str = "cosine", backend: str = "auto", standardise: bool = False,
                 approximate_above: int | None = None, target_recall: float = 0.99, seed: int = 0) -> None:
        self.metric = metric
        self.backend = backend
        self.standardise = standardise
        self.approximate_above = approximate_above
        self.target_recall = target_recall
        self.seed = seed

    def __repr__(self) -> str:
        n = getattr(self, "n_", None)
        kind = "approximate" if getattr(self, "approximate_", None) is not None else "exact"
        return (f"KnnIndex(metric={self.metric!r}, backend={self.backend!r}, standardise={self.standardise}, "
                f"n={n}, {kind})")

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array of vectors, got shape {X.shape}.")
        if not np.isfinite(X).all():
            raise ValueError("the vectors contain NaN or infinite values.")
        scaler = getattr(self, "standardiser_", None)
        if scaler is not None:
            X = scaler.transform(X)  # a fresh array: normalised in place
        return normalise(X, inplace=scaler is not None) if self.metric == "cosine" else X

    @property
    def search_info(self) -> dict[str, object]:
        """How neighbours are found: ``search`` (exact / approximate), its parameters and measured ``recall_at_10``.

        ``distinct_vectors`` is fewer than ``rows`` when rows repeat a vector.
        """
        if not hasattr(self, "_search"):
            raise ValueError("the index is not fitted; call fit(X) first.")
        info: dict[str, object] = {"search": "exact", "rows": self.n_, "recall_at_10": 1.0,
                                   "standardised": self.standardiser_ is not None, "distinct_vectors": len(self._data)}
        if self.standardiser_ is not None:
            info["dropped_constant_columns"] = self.standardiser_.n_dropped
        if self.approximate_ is not None:
            info.update(search="approximate", **self.approximate_.to_dict())
        return info

    def fit(self, X: np.ndarray) -> KnnIndex:
        """Index the rows of ``X`` (shape ``(n, d)``); returns ``self``."""
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}.")
        self.standardiser_: Standardiser | None = None
        self.approximate_: Approximate | None = None
        raw = np.asarray(X, dtype=np.float32)
        if raw.ndim == 2 and len(raw) and self.standardise and np.isfinite(raw).all():
            self.standardiser_ = Standardiser().fit(raw)
        X = self._prepare(raw)
        if len(X) == 0:
            raise ValueError("cannot index an empty embedding.")
        self.n_, self.dim_ = len(X), raw.shape[1]
        self.groups_: RowGroups | None = row_groups(X)
        self._data = X if self.groups_ is None else X[self.groups_.first]  # the vectors searched
        self._unit = tie_unit(self._data, self.metric)  # every distinct row is there: the same largest norm
        if self._wants_approximate():
            self._fit_approximate(X)
        else:
            self._search = self._tie_broken(BACKENDS[self.backend](self._data, self.metric))
        return self

    def _tie_broken(self, search: Search, max_fetch: int | None = None) -> Search:
        if self.groups_ is None:
            return tie_broken(search, self._data, self.metric, max_fetch=max_fetch, unit=self._unit)
        return grouped_tie_broken(search, self.groups_, self._data, self.metric, unit=self._unit, max_fetch=max_fetch)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """What a fitted exact index needs to be rebuilt without its rows: ``(arrays, meta)``; ``None`` if approximate.

        The arrays are the searched vectors (standardised, normalised, one per group of identical
        rows) and, when rows repeat, each row's group; the metadata holds the rest, with the
        standardiser's statistics as exact JSON floats. :meth:`from_state` rebuilds the same index.
        """
        if not hasattr(self, "_search"):
            raise ValueError("the index is not fitted; call fit(X) first.")
        if self.approximate_ is not None:
            return None
        arrays = {"vectors": self._data}
        if self.groups_ is not None:
            arrays["groups"] = self.groups_.group
        scaler = self.standardiser_
        meta: dict[str, Any] = {
            "version": STATE_VERSION, "metric": self.metric, "backend": self.backend, "standardise": self.standardise,
            "rows": self.n_, "dim": self.dim_, "unit": self._unit,
            "standardiser": None if scaler is None else {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
                                                         "keep": scaler.keep_.tolist()}}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> KnnIndex:
        """The index :meth:`state` described, searching exactly as the fitted one did.

        Raises:
            ValueError: If the state is not one this version wrote, or its parts disagree.
        """
        try:
            return cls._from_state(arrays, meta)
        except _StateError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError):  # values of the wrong kind
            raise _StateError("not a retrieval index state this version wrote.") from None

    @classmethod
    def _from_state(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> KnnIndex:
        vectors, groups = np.ascontiguousarray(arrays["vectors"], dtype=np.float32), arrays.get("groups")
        if (not isinstance(meta, Mapping) or meta.get("version") != STATE_VERSION or vectors.ndim != 2
                or meta.get("metric") not in METRICS or meta.get("backend") not in BACKENDS):
            raise _StateError("not a retrieval index state this version wrote.")
        index = cls(metric=str(meta["metric"]), backend=str(meta["backend"]), standardise=bool(meta["standardise"]))
        index.n_, index.dim_, index._unit = int(meta["rows"]), int(meta["dim"]), float(meta["unit"])
        if not (index.n_ >= 1 and index.dim_ >= 1 and np.isfinite(index._unit) and index._unit > 0):
            raise _StateError("the retrieval index state's parts disagree.")
        index.approximate_ = None
        index.standardiser_ = None
        if meta["standardiser"] is not None:
            scaler = Standardiser()
            scaler.keep_ = np.asarray(meta["standardiser"]["keep"], dtype=bool)
            scaler.mean_ = np.asarray(meta["standardiser"]["mean"], dtype=np.float64)
            scaler.scale_ = np.asarray(meta["standardiser"]["scale"], dtype=np.float64)
            kept = int(scaler.keep_.sum())
            if (scaler.keep_.shape != (index.dim_,) or scaler.mean_.shape != (kept,) or scaler.scale_.shape != (kept,)
                    or vectors.shape[1] != max(kept, 1)):
                raise _StateError("the retrieval index state's parts disagree.")
            index.standardiser_ = scaler
        elif vectors.shape[1] != index.dim_:
            raise _StateError("the retrieval index state's parts disagree.")
        index.groups_ = None if groups is None else groups_from_labels(np.asarray(groups, dtype=np.int64))
        expected = index.n_ if index.groups_ is None else len(index.groups_.first)
        if len(vectors) != expected or (index.groups_ is not None and len(index.groups_.group) != index.n_):
            raise _StateError("the retrieval index state's parts disagree.")
        index._data = vectors
        index._search = index._tie_broken(BACKENDS[index.backend](vectors, index.metric))
        return index

    def _wants_approximate(self) -> bool:
        threshold = self.approximate_above if self.approximate_above is not None else approximate_threshold()
        if self.n_ < max(threshold, MIN_APPROX_ROWS) or self.backend == "sklearn":
            return False
        try:
            import faiss  # noqa: F401
        except ImportError:
            log.warning("faiss is not installed: %d rows are searched exactly", self.n_)
            return False
        return True

    def _fit_approximate(self, X: np.ndarray) -> None:
        """IVF over the searched vectors, its ``nprobe`` tuned on the indexed rows ``X``."""
        start = time.perf_counter()
        index, search = build_ivf(self._data, self.metric, seed=self.seed)
        self._search = self._tie_broken(search, max_fetch=MAX_APPROX_FETCH)
        # recall is measured on rows, against exact search over every row
        recall, n_queries, curve = tune_nprobe(index, self.query_rows, X, self.metric, unit=self._unit,
                                               seed=self.seed, target=self.target_recall)
        self.approximate_ = Approximate(method="faiss IVF-Flat", params={"nlist": int(index.nlist),
                                        "nprobe": int(index.nprobe)}, recall_at_10=recall, n_queries=n_queries,
                                        seconds=time.perf_counter() - start, curve=curve)
        self._faiss_index = index

    def copies(self, row: int) -> int:
        """Other indexed rows with exactly ``row``'s vector (as searched: standardised, normalised)."""
        if not hasattr(self, "_search"):
            raise ValueError("the index is not fitted; call fit(X) first.")
        if not 0 <= row < self.n_:
            raise ValueError(f"row {row} is outside the index (0..{self.n_ - 1}).")
        return 0 if self.groups_ is None else int(self.groups_.sizes[self.groups_.group[row]]) - 1

    def _check(self, k: int) -> None:
        if not hasattr(self, "_search"):
            raise ValueError("the index is not fitted; call fit(X) first.")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")

    def query(self, Q: np.ndarray | None = None, k: int = 10, *,
              progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the ``k`` nearest indexed rows, nearest first.

        Args:
            Q: Query vectors ``(m, d)``; ``None`` queries every indexed row against the others,
                leaving each row out of its own neighbour list.
            k: Neighbours per query, capped at the number available.
            progress: ``progress(done, total)`` while every indexed row is queried.

        Returns:
            ``(distances, indices)``, both of shape ``(m, k)``.
        """
        self._check(k)
        if Q is not None:
            shape = np.shape(Q)
            if len(shape) == 2 and shape[1] != self.dim_:
                raise ValueError(f"queries have {shape[1]} dimensions, the index has {self.dim_}.")
            return self._search(self._prepare(Q), min(k, self.n_))
        return self.query_rows(np.arange(self.n_), k, progress=progress)

    def query_rows(self, rows: Sequence[int] | np.ndarray, k: int = 10, *, chunk: int = 4096,
                   progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of indexed rows (by position), each row left out of its own list.

        Rows with identical vectors are searched once. ``progress(done, total)`` is called after each
        chunk of ``chunk`` searched vectors, ``done`` counting the rows they answer.
        """
        self._check(k)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and not (0 <= rows.min() and rows.max() < self.n_):
            raise ValueError(f"row positions must lie in 0..{self.n_ - 1}.")
        k = min(k, self.n_ - 1)
        if k < 1:
            raise ValueError("a single indexed row has no neighbours other than itself.")
        searched, back = rows, None
        if self.groups_ is not None:  # each distinct vector is searched once; its copies share the answer
            distinct = np.unique(self.groups_.group[rows], return_inverse=True)
            searched, back = distinct[0], distinct[1].reshape(-1)
        dists, idxs = [], []
        for start in range(0, len(searched), chunk):
            d, i = self._search(self._data[searched[start:start + chunk]], k + 1)
            dists.append(d)
            idxs.append(i)
            if progress is not None:
                done = min(start + chunk, len(searched))
                progress(len(rows) if done == len(searched) else done * len(rows) // len(searched), len(rows))
        if not dists:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        d, i = np.concatenate(dists), np.concatenate(idxs)
        if back is not None:
            d, i = d[back], i[back]
        # Drop each row itself; if duplicates pushed it out of the list, drop the farthest.
        is_self = i == rows[:, None]
        drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
        keep = np.ones_like(i, dtype=bool)
        keep[np.arange(len(rows)), drop] = False
        return d[keep].reshape(len(rows), k), i[keep].reshape(len(rows), k)
