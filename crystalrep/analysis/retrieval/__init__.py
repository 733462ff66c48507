"""Retrieval: nearest neighbours in the full embedding space and how well they agree with labels.

Split by concern:

- :mod:`~crystalrep.analysis.retrieval.backends`: exact search (faiss flat, scikit-learn) and the
  tie-breaking every search shares;
- :mod:`~crystalrep.analysis.retrieval.approximate`: the faiss IVF index used above ~1M rows and
  its measured recall@10 against exact search;
- :mod:`~crystalrep.analysis.retrieval.features`: descriptor features (Magpie, SOAP) standardised
  before distances;
- :mod:`~crystalrep.analysis.retrieval.index`: :class:`KnnIndex`, which puts those together;
- :mod:`~crystalrep.analysis.retrieval.precision`: precision@k against chance, property spread;
- :mod:`~crystalrep.analysis.retrieval.neighbours`: a dataset row's or an upload's neighbours in a
  dataset's cached embedding.

Search is never done in a 2-D map.
"""

from __future__ import annotations

from crystalrep.analysis.retrieval.approximate import (
    APPROX_ENV,
    DEFAULT_APPROX_ABOVE,
    approximate_threshold,
)
from crystalrep.analysis.retrieval.backends import BACKENDS, METRICS, TIE_RESOLUTION
from crystalrep.analysis.retrieval.features import STANDARDISED_NOTE, Standardiser, is_descriptor
from crystalrep.analysis.retrieval.index import KnnIndex
from crystalrep.analysis.retrieval.neighbours import (
    MAX_REPORT_QUERIES,
    dataset_index,
    dataset_report,
    neighbour_table,
    neighbours_of,
    neighbours_of_row,
    query_property_spread,
    read_query,
    search_info,
)
from crystalrep.analysis.retrieval.precision import (
    LABEL_COLUMNS,
    mean_pair_gap,
    neighbour_property_spread,
    precision_at_k,
    retrieval_report,
)

__all__ = [
    "APPROX_ENV", "BACKENDS", "DEFAULT_APPROX_ABOVE", "LABEL_COLUMNS", "METRICS", "STANDARDISED_NOTE", "TIE_RESOLUTION",
    "MAX_REPORT_QUERIES", "KnnIndex", "Standardiser", "approximate_threshold", "dataset_index", "dataset_report", "is_descriptor",
    "mean_pair_gap", "neighbour_property_spread", "neighbour_table", "neighbours_of", "neighbours_of_row",
    "precision_at_k", "query_property_spread", "read_query", "retrieval_report", "search_info",
]
