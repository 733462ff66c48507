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


# Figures are shared by every session (cache_resource), not copied per session (cache_data): unpickling a
# plotly figure costs ~0.2-0.4 s, paid by every session that opens the page. Treat them as read-only.
@st.cache_resource(max_entries=16, show_spinner="Counting elements…")
def element_figure(ref: DatasetRef, *, log: bool = False, font_px: int = 12) -> go.Figure:
    """Periodic-table heatmap of element occurrence (:func:`crystalrep.plots.data.element_counts_figure`).

    ``font_px`` sizes the tile text. Shared by all sessions: treat it as read-only.
    """
    return plots.element_counts_figure(dataset(ref), log=log).update_traces(textfont_size=font_px)


@st.cache_resource(max_entries=64, show_spinner=False)
def histogram_figure(ref: DatasetRef, prop: str) -> go.Figure:
    """Histogram or category bars of one property (:func:`crystalrep.plots.data.property_histogram`).

    Shared by all sessions: treat it as read-only.
    """
    return plots.property_histogram(dataset(ref), prop)


def has_embeddings(ref: DatasetRef) -> bool:
    """Whether the store holds any embedding of this dataset, from the artifacts' small ``meta.json`` files.

    The exact check (:func:`ui.embeddings.status`) needs each encoder's store key, and for a neural
    encoder that means importing torch and building the model (~20 s and ~400 MB on a fresh server)
    just to learn that nothing is stored. A missing or unreadable meta only sends the page to that
    exact check, so this never hides a stored embedding.
    """
    from crystalrep.embed import EMBEDDINGS_KIND
    from crystalrep.store import Store

    store = Store()
    fingerprint = ref.stamp.split(":", 1)[0]
    for key in store.keys(EMBEDDINGS_KIND):
        try:
            meta = json.loads((store.path(EMBEDDINGS_KIND, key) / "meta.json").read_text())
        except (OSError, ValueError):
            return True
        if not isinstance(meta, dict) or meta.get("dataset_fingerprint") in (fingerprint, None):
            return True
    return False


def clear() -> None:
    """Drop every cached dataset and figure (tests, or after deleting a dataset)."""
    st.cache_data.clear()
    st.cache_resource.clear()
