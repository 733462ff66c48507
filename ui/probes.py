"""Probe results for the Probes page, one cached call per encoder so a progress bar can move between them.

Every encoder is probed on the same outer folds: :func:`crystalrep.analysis.probes.compare` builds
them from the dataset, property, split, seed and element only. Results live in the store (kind
``"probes"``); the ``st.cache_data`` layer keyed by the embedding's store key only spares the
store reads on a warm page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from crystalrep.analysis import probes
from crystalrep.lecture import verdicts
from ui import embeddings
from ui.cache import DatasetRef, dataset

SPLIT = "probes.split"
ELEMENT = "probes.element"
COMPARE = "probes.compare_splits"
SIZES = (50, 100, 200, 500, 1000)


@st.cache_data(max_entries=512, show_spinner=False)
def _probe(ref: DatasetRef, prop: str, name: str, embedding_key: str, split: str, element: str | None) -> dict:
    row = probes.compare(dataset(ref), prop, [name], split=split, element=element).iloc[0]
    return row.to_dict()


@st.cache_data(max_entries=256, show_spinner=False)
def _curve(ref: DatasetRef, prop: str, name: str, embedding_key: str, split: str,
           element: str | None) -> tuple[pd.DataFrame, int]:
    out = probes.learning_curve(dataset(ref), prop, [name], sizes=SIZES, split=split, element=element)
    return out, int(out.attrs.get("available", 0))


def _each(names: list[str], sentence: str, call: Callable[[str], Any]) -> list[Any]:
    """``call(name)`` for every encoder, with a progress bar that disappears when done."""
    bar, out = st.empty(), []
    for i, name in enumerate(names):
        bar.progress(i / len(names), text=f"{sentence} {name} ({i + 1} of {len(names)})…")
        out.append(call(name))
    bar.empty()
    return out


def comparison(ref: DatasetRef, prop: str, names: list[str], split: str, element: str | None) -> pd.DataFrame:
    """One :func:`compare` row per encoder (same folds), computed with a progress bar when not cached."""
    rows = _each(names, "Probing with", lambda n: _probe(ref, prop, n, embeddings.key(ref, n), split, element))
    return pd.DataFrame(rows)


def curves(ref: DatasetRef, prop: str, names: list[str], split: str, element: str | None) -> tuple[pd.DataFrame, int]:
    """Learning-curve rows of every encoder and the training labels available per fold."""
    parts = _each(names, "Learning curve of", lambda n: _curve(ref, prop, n, embeddings.key(ref, n), split, element))
    frames = [p[0] for p in parts if len(p[0])]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), min(p[1] for p in parts)


@st.cache_data(max_entries=256, show_spinner="Measuring how separated each encoder's map looks…")
def _separation(ref: DatasetRef, name: str, embedding_key: str, method: str, label: str) -> float:
    X = embeddings.cached(ref, name)[0]
    return verdicts.map_separation_of(X, embedding_key, dataset(ref).table[label], method=method)


def badge(ref: DatasetRef, name: str, r2: float) -> verdicts.Badge | None:
    """The "pretty map, dead probe" verdict of one encoder (``None`` without a categorical label)."""
    label = verdicts.separation_label(dataset(ref).table)
    if label is None:
        return None
    key = embeddings.key(ref, name)
    method = verdicts.badge_map_method(key)  # outside the cache: a t-SNE computed later takes over
    return verdicts.pretty_map_dead_probe(_separation(ref, name, key, method, label), r2, map_method=method, label=label)


def target(ref: DatasetRef, prop: str) -> np.ndarray:
    """The property as floats (NaN where missing)."""
    return pd.to_numeric(dataset(ref).table[prop], errors="coerce").to_numpy(dtype=np.float64)
