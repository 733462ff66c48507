"""Exact nearest neighbours in the full embedding space, and how well they agree with labels.

Search is always exact and never done in a 2-D map: faiss flat indices (``IndexFlatIP`` on
L2-normalised rows for cosine, ``IndexFlatL2`` for euclidean), or scikit-learn's brute-force
``NearestNeighbors`` when faiss is not installed. Distances are ``1 - cos`` or euclidean.
Ties are broken by row index, so both backends return the same neighbours in the same order.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder
    from crystalrep.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS", "METRICS", "KnnIndex", "dataset_index", "neighbour_property_spread",
    "neighbour_table", "neighbours_of", "neighbours_of_row", "precision_at_k", "query_property_spread",
    "read_query", "retrieval_report",
]

METRICS = ("cosine", "euclidean")
_FEW_QUERIES = 20  # faiss's own threshold below which it skips BLAS and scans per query


def _normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def _faiss_search(X: np.ndarray, metric: str) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
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


def _sklearn_search(X: np.ndarray, metric: str) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(algorithm="brute", metric=metric).fit(X)

    def search(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = nn.kneighbors(Q, n_neighbors=k)
        return dist.astype(np.float32), idx.astype(np.int64)

    return search


def _auto_search(X: np.ndarray, metric: str) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    try:
        return _faiss_search(X, metric)
    except ImportError:
        log.info("faiss is not installed; using scikit-learn brute-force search")
        return _sklearn_search(X, metric)


_TIE_RTOL = 1e-5  # backends' float32 distances to a tied pair differ by rounding; wider counts as tied
TIE_RESOLUTION = 1e-6  # distances are reported on this grid (times the data scale): equal ones are ties


def _tie_broken(search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], X: np.ndarray,
                metric: str) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    """Wrap a backend so results are ordered by (distance, row index), whichever backend ran.

    Candidates are fetched until the k-th distance is clearly below the last one fetched (so every
    row tied with the k-th is among them), their distances recomputed the same way (float64 from
    the indexed float32 rows) and rounded to ``TIE_RESOLUTION`` of the data scale (1 for cosine,
    the largest row norm for euclidean), then sorted by distance and, for equal distances, by row
    index.
    """
    n = len(X)
    unit = TIE_RESOLUTION * (1.0 if metric == "cosine" else max(float(np.linalg.norm(X, axis=1).max()), 1e-12))

    def search_sorted(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(n, k + 8)
        while True:
            dist, idx = search(Q, fetch)
            edge = dist[:, k - 1].astype(np.float64)
            if fetch >= n or np.all(dist[:, -1] > edge + _TIE_RTOL * (1.0 + np.abs(edge))):
                break
            fetch = min(n, 2 * fetch)
        exact = np.empty(idx.shape, dtype=np.float32)
        for start in range(0, len(Q), 256):  # bounded memory: 256 queries x candidates x dim at a time
            part = slice(start, start + 256)
            rows, q = X[idx[part]].astype(np.float64), Q[part].astype(np.float64)[:, None, :]
            if metric == "cosine":
                d = np.maximum(1.0 - (rows * q).sum(axis=2), 0.0)
            else:
                d = np.sqrt(((rows - q) ** 2).sum(axis=2))
            exact[part] = np.round(d / unit) * unit
        order = np.lexsort((idx, exact), axis=1)[:, :k]
        return np.take_along_axis(exact, order, axis=1), np.take_along_axis(idx, order, axis=1).astype(np.int64)

    return search_sorted


BACKENDS: dict[str, Callable[[np.ndarray, str], Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]]] = {
    "auto": _auto_search,
    "faiss": _faiss_search,
    "sklearn": _sklearn_search,
}


class KnnIndex:
    """Exact k-nearest-neighbour search over the rows of an embedding.

    Args:
        metric: ``"cosine"`` (rows L2-normalised, distance ``1 - cos``) or ``"euclidean"``.
        backend: ``"auto"`` (faiss when importable, else sklearn), ``"faiss"`` or ``"sklearn"``.

    Neighbours come nearest first; rows at the same distance (float32) come in row-index order,
    with both backends, so a tie at the k-th place always keeps the lower rows.

    Example:
        >>> index = KnnIndex(metric="cosine").fit(X)
        >>> dist, idx = index.query(k=10)          # each row's neighbours, itself excluded
        >>> dist, idx = index.query(Q, k=10)       # neighbours of new vectors
    """

    def __init__(self, *, metric: str = "cosine", backend: str = "auto") -> None:
        self.metric = metric
        self.backend = backend

    def __repr__(self) -> str:
        n = getattr(self, "n_", None)
        return f"KnnIndex(metric={self.metric!r}, backend={self.backend!r}, n={n})"

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array of vectors, got shape {X.shape}.")
        if not np.isfinite(X).all():
            raise ValueError("the vectors contain NaN or infinite values.")
        return np.ascontiguousarray(_normalise(X)) if self.metric == "cosine" else X

    def fit(self, X: np.ndarray) -> KnnIndex:
        """Index the rows of ``X`` (shape ``(n, d)``); returns ``self``."""
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}.")
        X = self._prepare(X)
        if len(X) == 0:
            raise ValueError("cannot index an empty embedding.")
        self.n_, self.dim_ = X.shape
        self._data = X
        self._search = _tie_broken(BACKENDS[self.backend](X, self.metric), X, self.metric)
        return self

    def _check(self, k: int) -> None:
        if not hasattr(self, "_search"):
            raise ValueError("the index is not fitted; call fit(X) first.")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")

    def query(self, Q: np.ndarray | None = None, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the ``k`` nearest indexed rows, nearest first.

        Args:
            Q: Query vectors ``(m, d)``; ``None`` queries every indexed row against the others,
                leaving each row out of its own neighbour list.
            k: Neighbours per query, capped at the number available.

        Returns:
            ``(distances, indices)``, both of shape ``(m, k)``.
        """
        self._check(k)
        if Q is not None:
            Q = self._prepare(Q)
            if Q.shape[1] != self.dim_:
                raise ValueError(f"queries have {Q.shape[1]} dimensions, the index has {self.dim_}.")
            return self._search(Q, min(k, self.n_))
        return self.query_rows(np.arange(self.n_), k)

    def query_rows(self, rows: Sequence[int] | np.ndarray, k: int = 10, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of indexed rows (by position), each row left out of its own list."""
        self._check(k)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and not (0 <= rows.min() and rows.max() < self.n_):
            raise ValueError(f"row positions must lie in 0..{self.n_ - 1}.")
        k = min(k, self.n_ - 1)
        if k < 1:
            raise ValueError("a single indexed row has no neighbours other than itself.")
        dists, idxs = [], []
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            d, i = self._search(self._data[part], k + 1)
            # Drop each row itself; if duplicates pushed it out of the list, drop the farthest.
            is_self = i == part[:, None]
            drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
            keep = np.ones_like(i, dtype=bool)
            keep[np.arange(len(part)), drop] = False
            dists.append(d[keep].reshape(len(part), k))
            idxs.append(i[keep].reshape(len(part), k))
        if not dists:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return np.concatenate(dists), np.concatenate(idxs)


LABEL_COLUMNS = ("spacegroup", "crystal_system", "prototype", "chemsys")


def _codes(labels: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Integer codes per label; missing labels (None, NaN, "") become -1."""
    series = pd.Series(np.asarray(labels, dtype=object)).replace("", None)
    codes, _ = pd.factorize(series, use_na_sentinel=True)
    return codes


def _precision(idx: np.ndarray, codes: np.ndarray) -> tuple[float, float]:
    """(precision of neighbour lists, chance level for random neighbours) over labelled queries."""
    valid = codes >= 0
    if not valid.any():
        return float("nan"), float("nan")
    hits = (codes[idx[valid]] == codes[valid, None]).mean(axis=1)
    counts = np.bincount(codes[valid])
    chance = float((counts * (counts - 1)).sum() / (valid.sum() * max(len(codes) - 1, 1)))
    return float(hits.mean()), chance


def precision_at_k(X: np.ndarray, labels: Sequence[Any] | np.ndarray, k: int = 10, metric: str = "cosine") -> float:
    """Fraction of each crystal's ``k`` nearest neighbours (itself excluded) sharing its label.

    Args:
        X: Embeddings ``(n, d)``.
        labels: One label per row (space group, crystal system, prototype, chemical system...);
            rows with a missing label are not scored and never count as a match.
        k: Neighbours per crystal.
        metric: ``"cosine"`` or ``"euclidean"``.

    Returns:
        The mean precision over labelled rows (NaN when no row is labelled).
    """
    if len(labels) != len(X):
        raise ValueError(f"{len(labels)} labels for {len(X)} embedding rows.")
    _, idx = KnnIndex(metric=metric).fit(X).query(k=k)
    return _precision(idx, _codes(labels))[0]


def retrieval_report(
    X: np.ndarray,
    table: pd.DataFrame,
    *,
    k: int = 10,
    metric: str = "cosine",
    labels: Sequence[str] = LABEL_COLUMNS,
) -> pd.DataFrame:
    """Precision@k for each label column present in ``table``, beside its chance level.

    Returns:
        Rows ``label, k, precision, chance`` (chance = expected precision of random neighbours).
    """
    _, idx = KnnIndex(metric=metric).fit(X).query(k=k)
    rows = []
    for col in labels:
        if col in table.columns:
            precision, chance = _precision(idx, _codes(table[col].to_numpy()))
            rows.append({"label": col, "k": idx.shape[1], "precision": precision, "chance": chance})
    return pd.DataFrame(rows, columns=["label", "k", "precision", "chance"])


def _mean_pair_gap(values: np.ndarray) -> float:
    """Mean |a - b| over all pairs, exactly, in O(n log n)."""
    v = np.sort(values)
    n = len(v)
    if n < 2:
        return float("nan")
    return float((v * (2 * np.arange(n) - n + 1)).sum() / (n * (n - 1) / 2))


def neighbour_property_spread(X: np.ndarray, y: np.ndarray, k: int = 10, metric: str = "cosine") -> dict[str, float]:
    """How much a property varies among embedding neighbours, against random pairs.

    Args:
        X: Embeddings ``(n, d)``.
        y: Numeric property per row; NaN rows are ignored as queries and as neighbours.
        k: Neighbours per crystal.
        metric: ``"cosine"`` or ``"euclidean"``.

    Returns:
        ``neighbour_mad`` (mean |y - y_neighbour|), ``random_mad`` (mean |y_i - y_j| over all
        pairs) and their ``ratio`` (well below 1 when neighbours share the property).
    """
    y = np.asarray(y, dtype=np.float64)
    if len(y) != len(X):
        raise ValueError(f"{len(y)} values for {len(X)} embedding rows.")
    _, idx = KnnIndex(metric=metric).fit(X).query(k=k)
    gaps = np.abs(y[idx] - y[:, None])
    ok = np.isfinite(gaps)
    count = ok.sum(axis=1)
    scored = count > 0  # a query with a NaN value has no finite gaps, so it drops out here
    per_query = np.where(ok, gaps, 0.0).sum(axis=1)[scored] / count[scored]
    neighbour = float(per_query.mean()) if scored.any() else float("nan")
    finite = np.isfinite(y)
    random = _mean_pair_gap(y[finite])
    ratio = neighbour / random if random > 0 else float("nan")
    return {"neighbour_mad": neighbour, "random_mad": random, "ratio": float(ratio)}


_INDEXES: OrderedDict[tuple[str, str, str], KnnIndex] = OrderedDict()
_INDEX_LOCK = threading.Lock()
_MAX_INDEXES = 8


@functools.lru_cache(maxsize=8)
def _named_encoder(name: str) -> Encoder:
    from crystalrep.encoders import get_encoder

    return get_encoder(name)


def _encoder(encoder: str | Encoder) -> Encoder:
    # Kept per name so repeated uploads reuse loaded weights instead of rebuilding the model.
    return _named_encoder(encoder) if isinstance(encoder, str) else encoder


def read_query(query: str | Path | Structure | bytes, *, filename: str | None = None) -> Structure:
    """Parse and validate an uploaded crystal.

    Args:
        query: A file path, structure text (anything containing a newline), a pymatgen
            Structure, or raw file bytes (then ``filename`` names the format, ``.gz`` allowed).
        filename: Name used for format detection and in error messages.

    Raises:
        StructureError: One sentence saying why the crystal cannot be used.
    """
    from pymatgen.core import Structure

    from crystalrep.structures import read_structure, text_from_bytes, validate_structure

    if isinstance(query, Structure):
        return validate_structure(query, source=filename or "query")
    if isinstance(query, bytes):
        if not filename:
            raise ValueError("an uploaded file given as bytes needs its filename.")
        return read_structure(filename, text=text_from_bytes(filename, query))  # bounded, gunzipped if .gz
    if isinstance(query, str) and "\n" in query:
        return read_structure(filename or "query", text=query)
    return read_structure(Path(query))


def dataset_index(dataset: Dataset, encoder: str | Encoder, *, metric: str = "cosine",
                  store: Store | None = None) -> KnnIndex:
    """The fitted index over a dataset's cached embedding, kept in memory per embedding key."""
    from crystalrep.embed import embed_dataset

    enc = _encoder(encoder)
    key = (dataset.fingerprint, enc.fingerprint, metric)
    with _INDEX_LOCK:
        if key in _INDEXES:
            _INDEXES.move_to_end(key)
            return _INDEXES[key]
    X, _ = embed_dataset(dataset, enc, store=store)
    index = KnnIndex(metric=metric).fit(X)
    with _INDEX_LOCK:
        _INDEXES[key] = index
        while len(_INDEXES) > _MAX_INDEXES:
            _INDEXES.popitem(last=False)
    return index


def neighbour_table(dataset: Dataset, distances: np.ndarray, indices: np.ndarray) -> pd.DataFrame:
    """Top-k rows for one query: rank, id, formula, spacegroup, distance, numeric properties, row."""
    idx = np.asarray(indices).reshape(-1)
    table = dataset.table.iloc[idx]
    out = pd.DataFrame({
        "rank": np.arange(1, len(idx) + 1),
        "id": table["id"].astype(str).to_numpy(),
        "formula": table["formula"].to_numpy(),
        "spacegroup": table["spacegroup"].to_numpy(),
        "distance": np.asarray(distances, dtype=np.float64).reshape(-1),
    })
    for name in dataset.property_names("numeric"):
        out[name] = table[name].to_numpy()
    out["row"] = idx
    return out


def neighbours_of(
    query: str | Path | Structure | bytes,
    dataset: Dataset | str,
    encoder: str | Encoder,
    *,
    k: int = 10,
    metric: str = "cosine",
    store: Store | None = None,
    filename: str | None = None,
) -> pd.DataFrame:
    """The ``k`` dataset crystals nearest to an uploaded one, in the encoder's full embedding.

    The query is parsed and validated (:func:`read_query`), embedded with the same encoder as
    the dataset, and searched exactly against the dataset's cached embedding.

    Args:
        query: Path, structure text, Structure, or file bytes (with ``filename``).
        dataset: A Dataset or the name of a saved one.
        encoder: Encoder name or instance.
        k: Number of neighbours.
        metric: ``"cosine"`` or ``"euclidean"``.
        store: Artifact store holding the dataset embedding.
        filename: Name of an uploaded file (format detection, messages).

    Returns:
        See :func:`neighbour_table`.

    Raises:
        StructureError: The upload is not a usable crystal.
    """
    structure = read_query(query, filename=filename)  # a bad upload fails before any model loads
    from crystalrep.embed import embed_structures

    if isinstance(dataset, str):
        from crystalrep.datasets import load_dataset

        dataset = load_dataset(dataset)
    enc = _encoder(encoder)
    index = dataset_index(dataset, enc, metric=metric, store=store)
    vector = embed_structures([structure], enc)
    distances, indices = index.query(vector, k=k)
    return neighbour_table(dataset, distances[0], indices[0])


def neighbours_of_row(row: int, dataset: Dataset, encoder: str | Encoder, *, k: int = 10,
                      metric: str = "cosine", store: Store | None = None) -> pd.DataFrame:
    """Like :func:`neighbours_of` for a crystal already in the dataset (itself excluded)."""
    if not 0 <= row < len(dataset):
        raise ValueError(f"row {row} is outside the dataset (0..{len(dataset) - 1}).")
    distances, indices = dataset_index(dataset, encoder, metric=metric, store=store).query_rows([row], k)
    return neighbour_table(dataset, distances[0], indices[0])


def query_property_spread(dataset: Dataset, rows: Sequence[int] | np.ndarray, *, query: int | None = None) -> pd.DataFrame:
    """How each numeric property varies among one query's neighbours, against the whole dataset.

    Args:
        dataset: The dataset the neighbours come from.
        rows: Neighbour row positions (the ``row`` column of :func:`neighbour_table`).
        query: The query's row when it is a dataset crystal; an upload has no property values.

    Returns:
        One row per numeric property: ``property``, ``query`` (its value, NaN for an upload),
        ``neighbour_mean``, ``neighbour_std``, ``dataset_std`` (sample standard deviations,
        NaN values ignored), ``std_ratio`` = neighbour_std / dataset_std (well below 1 when the
        neighbours share the property) and ``n`` (neighbours with a value).
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    out = []
    for name in dataset.property_names("numeric"):
        column = dataset.table[name].astype(np.float64)
        values = column.iloc[rows]
        spread, overall = values.std(), column.std()
        out.append({
            "property": name,
            "query": float(column.iloc[query]) if query is not None else float("nan"),
            "neighbour_mean": float(values.mean()),
            "neighbour_std": float(spread),
            "dataset_std": float(overall),
            "std_ratio": float(spread / overall) if overall > 0 else float("nan"),
            "n": int(values.notna().sum()),
        })
    columns = ["property", "query", "neighbour_mean", "neighbour_std", "dataset_std", "std_ratio", "n"]
    return pd.DataFrame(out, columns=columns)
