"""How well neighbour lists agree with labels and properties: precision@k against chance, property spread.

Every function takes an embedding (it builds the :class:`~crystalrep.analysis.retrieval.index.KnnIndex`)
or, with the ``*_from_neighbours`` forms, neighbour lists already found, so one search over a big
set serves every label column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.analysis.retrieval.index import KnnIndex

__all__ = ["LABEL_COLUMNS", "mean_pair_gap", "neighbour_property_spread", "precision_at_k", "report_from_neighbours",
           "retrieval_report", "spread_from_neighbours"]

LABEL_COLUMNS = ("spacegroup", "crystal_system", "prototype", "chemsys")


def _codes(labels: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Integer codes per label; missing labels (None, NaN, "") become -1."""
    series = pd.Series(np.asarray(labels, dtype=object)).replace("", None)
    codes, _ = pd.factorize(series, use_na_sentinel=True)
    return codes


def _precision(idx: np.ndarray, codes: np.ndarray, queries: np.ndarray | None = None) -> tuple[float, float]:
    """(precision of neighbour lists, chance level for random neighbours) over labelled queries.

    ``idx[i]`` is the neighbour list of row ``queries[i]`` (of row ``i`` when ``queries`` is None).
    """
    query_codes = codes if queries is None else codes[queries]
    scored = query_codes >= 0
    valid = codes >= 0
    if not scored.any():
        return float("nan"), float("nan")
    hits = (codes[idx[scored]] == query_codes[scored, None]).mean(axis=1)
    counts = np.bincount(codes[valid])
    chance = float((counts * (counts - 1)).sum() / (valid.sum() * max(len(codes) - 1, 1)))
    return float(hits.mean()), chance


def _neighbours(X: np.ndarray, k: int, metric: str, standardise: bool) -> np.ndarray:
    return KnnIndex(metric=metric, standardise=standardise).fit(X).query(k=k)[1]


def precision_at_k(X: np.ndarray, labels: Sequence[Any] | np.ndarray, k: int = 10, metric: str = "cosine", *,
                   standardise: bool = False) -> float:
    """Fraction of each crystal's ``k`` nearest neighbours (itself excluded) sharing its label.

    Args:
        X: Embeddings ``(n, d)``.
        labels: One label per row (space group, crystal system, prototype, chemical system...);
            rows with a missing label are not scored and never count as a match.
        k: Neighbours per crystal.
        metric: ``"cosine"`` or ``"euclidean"``.
        standardise: z-score the columns first (descriptor features; see :class:`KnnIndex`).

    Returns:
        The mean precision over labelled rows (NaN when no row is labelled).
    """
    if len(labels) != len(X):
        raise ValueError(f"{len(labels)} labels for {len(X)} embedding rows.")
    return _precision(_neighbours(X, k, metric, standardise), _codes(labels))[0]


def report_from_neighbours(idx: np.ndarray, table: pd.DataFrame, *,
                           labels: Sequence[str] = LABEL_COLUMNS, queries: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`retrieval_report` from neighbour lists ``idx`` (``(m, k)`` row positions).

    ``idx[i]`` belongs to row ``queries[i]``; without ``queries`` every row is a query, in order.
    """
    expected = len(table) if queries is None else len(queries)
    if len(idx) != expected:
        raise ValueError(f"{len(idx)} neighbour lists for {expected} query rows.")
    rows = []
    for col in labels:
        if col in table.columns:
            precision, chance = _precision(idx, _codes(table[col].to_numpy()), queries)
            rows.append({"label": col, "k": idx.shape[1], "precision": precision, "chance": chance})
    return pd.DataFrame(rows, columns=["label", "k", "precision", "chance"])


def retrieval_report(
    X: np.ndarray,
    table: pd.DataFrame,
    *,
    k: int = 10,
    metric: str = "cosine",
    labels: Sequence[str] = LABEL_COLUMNS,
    standardise: bool = False,
) -> pd.DataFrame:
    """Precision@k for each label column present in ``table``, beside its chance level.

    Returns:
        Rows ``label, k, precision, chance`` (chance = expected precision of random neighbours).
    """
    return report_from_neighbours(_neighbours(X, k, metric, standardise), table, labels=labels)


def mean_pair_gap(values: np.ndarray) -> float:
    """Mean |a - b| over all pairs, exactly, in O(n log n)."""
    v = np.sort(values)
    n = len(v)
    if n < 2:
        return float("nan")
    return float((v * (2 * np.arange(n) - n + 1)).sum() / (n * (n - 1) / 2))


def spread_from_neighbours(idx: np.ndarray, y: np.ndarray, queries: np.ndarray | None = None) -> dict[str, float]:
    """:func:`neighbour_property_spread` from neighbour lists ``idx`` (``(m, k)`` row positions of rows ``queries``)."""
    y = np.asarray(y, dtype=np.float64)
    expected = len(y) if queries is None else len(queries)
    if len(idx) != expected:
        raise ValueError(f"{len(idx)} neighbour lists for {expected} query rows.")
    gaps = np.abs(y[idx] - (y if queries is None else y[queries])[:, None])
    ok = np.isfinite(gaps)
    count = ok.sum(axis=1)
    scored = count > 0  # a query with a NaN value has no finite gaps, so it drops out here
    per_query = np.where(ok, gaps, 0.0).sum(axis=1)[scored] / count[scored]
    neighbour = float(per_query.mean()) if scored.any() else float("nan")
    random = mean_pair_gap(y[np.isfinite(y)])
    ratio = neighbour / random if random > 0 else float("nan")
    return {"neighbour_mad": neighbour, "random_mad": random, "ratio": float(ratio)}


def neighbour_property_spread(X: np.ndarray, y: np.ndarray, k: int = 10, metric: str = "cosine", *,
                              standardise: bool = False) -> dict[str, float]:
    """How much a property varies among embedding neighbours, against random pairs.

    Args:
        X: Embeddings ``(n, d)``.
        y: Numeric property per row; NaN rows are ignored as queries and as neighbours.
        k: Neighbours per crystal.
        metric: ``"cosine"`` or ``"euclidean"``.
        standardise: z-score the columns first (descriptor features; see :class:`KnnIndex`).

    Returns:
        ``neighbour_mad`` (mean |y - y_neighbour|), ``random_mad`` (mean |y_i - y_j| over all
        pairs) and their ``ratio`` (well below 1 when neighbours share the property).
    """
    if len(y) != len(X):
        raise ValueError(f"{len(y)} values for {len(X)} embedding rows.")
    return spread_from_neighbours(_neighbours(X, k, metric, standardise), y)
