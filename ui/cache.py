"""Cached loaders and figures, keyed by what made them: dataset name + a stamp of its ``meta.json``.

Every cached function takes a :class:`DatasetRef` (hashed by value, never skipped with a ``_``
prefix), so re-importing or rebuilding a dataset changes the key and nothing stale is served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from crystalrep.datasets import Dataset, DatasetError, dataset_dir, load_dataset
from crystalrep.plots import data as plots

if TYPE_CHECKING:
    import plotly.graph_objects as go


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as a cache key.

    Args:
        name: Dataset name.
        stamp: ``"<fingerprint>:<mtime_ns>:<size>"`` of its ``meta.json``.
    """

    name: str
    stamp: str


def dataset_ref(name: str) -> DatasetRef:
    """The current :class:`DatasetRef` of a named dataset (reads only ``meta.json``)."""
    meta = dataset_dir(name) / "meta.json"
    try:
        stat = meta.stat()
        fingerprint = json.loads(meta.read_text()).get("fingerprint", "")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset {name!r} cannot be read ({exc}).") from exc
    return DatasetRef(name, f"{fingerprint}:{stat.st_mtime_ns}:{stat.st_size}")


@st.cache_resource(max_entries=4, show_spinner="Loading dataset…")
def dataset(ref: DatasetRef) -> Dataset:
    """The loaded dataset, shared by all sessions: treat it as read-only."""
    return load_dataset(ref.name)


@st.cache_data(max_entries=16, show_spinner=False)
def summary(ref: DatasetRef) -> dict[str, Any]:
    """``Dataset.describe()``: source, license, description, counts and fingerprint."""
    return dataset(ref).describe()


@st.cache_data(max_entries=16, show_spinner="Counting elements…")
def element_figure(ref: DatasetRef, *, log: bool = False) -> go.Figure:
    """Periodic-table heatmap of element occurrence (:func:`crystalrep.plots.data.element_counts_figure`)."""
    return plots.element_counts_figure(dataset(ref), log=log)


@st.cache_data(max_entries=64, show_spinner=False)
def histogram_figure(ref: DatasetRef, prop: str) -> go.Figure:
    """Histogram or category bars of one property (:func:`crystalrep.plots.data.property_histogram`)."""
    return plots.property_histogram(dataset(ref), prop)


def clear() -> None:
    """Drop every cached dataset and figure (tests, or after deleting a dataset)."""
    st.cache_data.clear()
    st.cache_resource.clear()
