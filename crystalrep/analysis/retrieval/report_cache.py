"""A dataset's precision@k report (:func:`~crystalrep.analysis.retrieval.neighbours.dataset_report`), cached in the store.

``crystalrep precision`` and the Retrieval page call :func:`report_cached` with the same key, so a
report computed by a background task (or a previous server) is read back, not recomputed. The key
holds what made the report: the dataset and encoder fingerprints (as the embedding's key does), k,
the metric, the property, the query sample and the approximate-search threshold in force.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from crystalrep.analysis.retrieval.approximate import approximate_threshold
from crystalrep.analysis.retrieval.neighbours import MAX_REPORT_QUERIES, dataset_report
from crystalrep.store import Store, content_key

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = ["KIND", "report_cached", "report_key"]

KIND = "precision"
CACHE_VERSION = 1
_COLUMNS = ["label", "k", "precision", "chance"]


def _encoder(encoder: str | Encoder) -> Encoder:
    from crystalrep.encoders import get_encoder

    return get_encoder(encoder) if isinstance(encoder, str) else encoder


def report_key(dataset: Dataset, encoder: str | Encoder, *, k: int = 10, metric: str = "cosine",
               prop: str | None = None, max_queries: int | None = MAX_REPORT_QUERIES, seed: int = 0) -> str:
    """Store key of one report; nothing is computed."""
    return content_key({"v": CACHE_VERSION, "dataset": dataset.fingerprint, "encoder": _encoder(encoder).fingerprint,
                        "k": int(k), "metric": metric, "prop": prop, "max_queries": max_queries, "seed": int(seed),
                        "approximate_above": approximate_threshold()})


def report_cached(dataset: Dataset, encoder: str | Encoder, *, k: int = 10, metric: str = "cosine",
                  prop: str | None = None, max_queries: int | None = MAX_REPORT_QUERIES, seed: int = 0,
                  store: Store | None = None, progress: Callable[[int, int], None] | None = None,
                  ) -> tuple[pd.DataFrame, dict[str, float] | None, bool]:
    """:func:`dataset_report`, read from the store when it holds it.

    Returns:
        ``(report, spread, from_cache)`` as :func:`dataset_report` returns them (``attrs["search"]``
        and ``attrs["queries"]`` included); a stored report has the same numbers as a fresh one.
    """
    store = store if store is not None else Store()
    enc = _encoder(encoder)

    def compute() -> dict[str, Any]:
        report, spread = dataset_report(dataset, enc, k=k, metric=metric, prop=prop, store=store,
                                        max_queries=max_queries, seed=seed, progress=progress)
        return {"rows": report.to_dict("records"), "search": report.attrs["search"],
                "queries": report.attrs["queries"], "spread": spread}

    key = report_key(dataset, enc, k=k, metric=metric, prop=prop, max_queries=max_queries, seed=seed)
    value, hit = store.memo_json(KIND, key, compute,
                                 accept=lambda v: isinstance(v, dict) and isinstance(v.get("rows"), list))
    report = pd.DataFrame(value["rows"], columns=_COLUMNS)
    report.attrs["search"], report.attrs["queries"] = value["search"], value["queries"]
    return report, value["spread"], hit
