"""Neighbours of one crystal: a dataset row or an uploaded file, searched in a dataset's cached embedding.

The fitted index of each (dataset, encoder, metric) stays in memory (a few, least recently used
dropped), so a page asking about crystal after crystal searches without refitting. Descriptor
encoders (Magpie, SOAP) are searched on standardised features
(:func:`~crystalrep.analysis.retrieval.features.is_descriptor`); the upload gets the same transform.
Every neighbour table carries how it was found in ``table.attrs["search"]`` (exact, or approximate
with its measured recall@10).
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

from crystalrep.analysis.retrieval.features import is_descriptor
from crystalrep.analysis.retrieval.index import STATE_VERSION, KnnIndex
from crystalrep.analysis.retrieval.precision import report_from_neighbours, spread_from_neighbours

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder
    from crystalrep.store import Store

MAX_REPORT_QUERIES = 5000  # query rows behind a dataset-wide P@k; more rows are sampled down to this

__all__ = ["dataset_index", "dataset_report", "neighbour_table", "neighbours_of", "neighbours_of_row",
           "query_property_spread", "read_query", "search_info"]

_INDEXES: OrderedDict[tuple[str, str, str], KnnIndex] = OrderedDict()
_INDEX_LOCK = threading.Lock()
log = logging.getLogger(__name__)
INDEX_KIND = "retrieval_indexes"  # fitted exact indices (KnnIndex.state), by embedding, metric and standardising
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
    """The fitted index over a dataset's cached embedding, kept in memory per embedding key.

    Descriptor encoders' features are standardised with this dataset's column statistics.
    """
    from crystalrep.embed import embed_dataset, embedding_key
    from crystalrep.store import Store, content_key

    enc = _encoder(encoder)
    key = (dataset.fingerprint, enc.fingerprint, metric)
    with _INDEX_LOCK:
        if key in _INDEXES:
            _INDEXES.move_to_end(key)
            return _INDEXES[key]
    store = store if store is not None else Store()
    standardise = is_descriptor(enc)
    state_key = content_key({"v": STATE_VERSION, "embedding": embedding_key(dataset, enc), "metric": metric,
                             "standardise": standardise})
    index = _stored_index(store, state_key)
    if index is None:
        X, _ = embed_dataset(dataset, enc, store=store)
        index = KnnIndex(metric=metric, standardise=standardise).fit(X)
        _store_index(store, state_key, index)
    with _INDEX_LOCK:
        _INDEXES[key] = index
        while len(_INDEXES) > _MAX_INDEXES:
            _INDEXES.popitem(last=False)
    return index


def _stored_index(store: Store, key: str) -> KnnIndex | None:
    """The index stored under ``key`` (:meth:`KnnIndex.state`), or ``None`` when absent, damaged or not this version's."""
    import io
    import json

    files = store.load_files(INDEX_KIND, key, required=("vectors.npy", "meta.json"))
    if files is None:
        return None
    try:
        arrays = {name.removesuffix(".npy"): np.load(io.BytesIO(data), allow_pickle=False)
                  for name, data in files.items() if name.endswith(".npy")}
        return KnnIndex.from_state(arrays, json.loads(files["meta.json"]))
    except (ValueError, OSError, RecursionError) as exc:  # a broken .npy or JSON, or a state from_state refuses
        log.warning("stored retrieval index %s is unusable (%s); rebuilding it", key, exc)
        return None


def _store_index(store: Store, key: str, index: KnnIndex) -> None:
    """Keep a fitted exact index in the store, so a cold server loads its searched vectors instead of refitting."""
    import json

    from crystalrep.store.files import npy_bytes

    state = index.state()
    if state is None:  # approximate: tuned against exact search on the rows, rebuilt instead
        return
    arrays, meta = state
    files = {f"{name}.npy": npy_bytes(array) for name, array in arrays.items()}
    files["meta.json"] = json.dumps(meta, sort_keys=True).encode()
    store.save_files(INDEX_KIND, key, files, replace=True)


def search_info(dataset: Dataset, encoder: str | Encoder, *, metric: str = "cosine",
                store: Store | None = None) -> dict[str, Any]:
    """How :func:`neighbours_of_row` and :func:`neighbours_of` search this dataset (:attr:`KnnIndex.search_info`)."""
    return dict(dataset_index(dataset, encoder, metric=metric, store=store).search_info)


def neighbour_table(dataset: Dataset, distances: np.ndarray, indices: np.ndarray, *,
                    search: dict[str, Any] | None = None) -> pd.DataFrame:
    """Top-k rows for one query: rank, id, formula, spacegroup, distance, numeric properties, row.

    ``search`` (how the neighbours were found) is kept in ``attrs["search"]``.
    """
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
    if search is not None:
        out.attrs["search"] = dict(search)
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
    the dataset (standardised like the dataset for descriptor encoders), and searched against
    the dataset's cached embedding.

    Args:
        query: Path, structure text, Structure, or file bytes (with ``filename``).
        dataset: A Dataset or the name of a saved one.
        encoder: Encoder name or instance.
        k: Number of neighbours.
        metric: ``"cosine"`` or ``"euclidean"``.
        store: Artifact store holding the dataset embedding.
        filename: Name of an uploaded file (format detection, messages).

    Returns:
        See :func:`neighbour_table`; ``attrs["search"]`` says exact or approximate (with recall@10).

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
    return neighbour_table(dataset, distances[0], indices[0], search=index.search_info)


def neighbours_of_row(row: int, dataset: Dataset, encoder: str | Encoder, *, k: int = 10,
                      metric: str = "cosine", store: Store | None = None) -> pd.DataFrame:
    """Like :func:`neighbours_of` for a crystal already in the dataset (itself excluded).

    ``attrs["identical"]`` counts the other crystals whose vector is exactly the query's
    (composition-only encoders give every polymorph the same one): they tie at distance 0.
    """
    if not 0 <= row < len(dataset):
        raise ValueError(f"row {row} is outside the dataset (0..{len(dataset) - 1}).")
    index = dataset_index(dataset, encoder, metric=metric, store=store)
    distances, indices = index.query_rows([row], k)
    table = neighbour_table(dataset, distances[0], indices[0], search=index.search_info)
    table.attrs["identical"] = index.copies(row)
    return table


def dataset_report(dataset: Dataset, encoder: str | Encoder, *, k: int = 10, metric: str = "cosine",
                   prop: str | None = None, store: Store | None = None, max_queries: int | None = MAX_REPORT_QUERIES,
                   seed: int = 0, progress: Callable[[int, int], None] | None = None,
                   ) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """Precision@k per label column and the spread of ``prop``, from one search per query row.

    Uses the same index as the neighbour searches (standardised descriptors; approximate above
    the threshold), so one pass over a big set serves every label. Above ``max_queries`` rows a
    seeded sample of ``max_queries`` crystals is queried against the whole index (the standard
    error of a precision over 5,000 queries is below 0.007), so the report costs the same at 50k
    and at 1M rows; ``attrs["queries"]`` says how many rows were queried, of how many, and the seed.

    Returns:
        ``(report, spread)``: :func:`~crystalrep.analysis.retrieval.precision.retrieval_report`'s
        table (its ``attrs["search"]`` says how neighbours were found) and
        :func:`~crystalrep.analysis.retrieval.precision.neighbour_property_spread`'s dict (``None``
        without ``prop``).
    """
    index = dataset_index(dataset, encoder, metric=metric, store=store)
    n = len(dataset)
    queries: np.ndarray | None = None
    if max_queries is not None and n > max_queries:
        queries = np.sort(np.random.default_rng(seed).choice(n, size=max_queries, replace=False))
        _, idx = index.query_rows(queries, k=k, progress=progress)
    else:
        _, idx = index.query(k=k, progress=progress)
    report = report_from_neighbours(idx, dataset.table, queries=queries)
    report.attrs["search"] = index.search_info
    report.attrs["queries"] = {"n": n if queries is None else len(queries), "of": n,
                               "seed": None if queries is None else seed}
    spread = None if prop is None else spread_from_neighbours(
        idx, dataset.table[prop].to_numpy(dtype=np.float64), queries)
    return report, spread


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
