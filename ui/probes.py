"""Probe results for the Probes page, one cached call per encoder so a progress bar can move between them.

Every encoder is probed on the same outer folds: :func:`crystalrep.analysis.probes.compare` builds
them from the dataset, property, split, seed and element only. Results live in the store (kind
``"probes"``); the ``st.cache_data`` layer keyed by the embedding's store key only spares the
store reads on a warm page. Above :data:`BACKGROUND_ABOVE` crystals the page runs ``crystalrep
probe --curve`` in the background (:func:`task`), which stores the same artifacts through the same
:func:`~crystalrep.analysis.probes.compare`, and draws once the store holds them all (:func:`ready`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from crystalrep.analysis import probes
from crystalrep.analysis.splits import labelled_folds
from crystalrep.lecture import verdicts
from ui import embeddings
from ui.background_task import task_key
from ui.cache import DatasetRef, dataset

SPLIT = "probes.split"
ELEMENT = "probes.element"
COMPARE = "probes.compare_splits"
SIZES = (50, 100, 200, 500, 1000)
SEED, N_SPLITS = 0, 5  # compare()'s defaults: the page's folds
BACKGROUND_ABOVE = 20_000  # crystals above which probes run as a background task


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


@st.cache_data(max_entries=64, show_spinner="Building the folds…")
def available(ref: DatasetRef, prop: str, split: str, element: str | None) -> int:
    """Training labels in the smallest outer fold (the learning curve's largest possible N)."""
    folds = labelled_folds(dataset(ref).table, target(ref, prop), split=split, seed=SEED, n_splits=N_SPLITS,
                           element=element)
    return min(len(train) for train, _ in folds)


def ready(ref: DatasetRef, prop: str, names: list[str], split: str, element: str | None, *, curve: bool) -> bool:
    """Whether the store holds every probe the page draws: each encoder with all labels, and (``curve``) at each N."""
    from crystalrep.store import Store

    y, store = target(ref, prop), Store()
    sizes: list[int | None] = [None]
    if curve:
        sizes += [n for n in SIZES if n <= available(ref, prop, split, element)]
    return all(store.verified(probes.KIND, probes.probe_key(embeddings.key(ref, name), prop, y, split=split, seed=SEED,
                                                            n_splits=N_SPLITS, element=element, n_labels=n))
               is not None for name in names for n in sizes)


def task(ref: DatasetRef, prop: str, names: list[str], split: str, element: str | None, *,
         curve: bool) -> tuple[str, list[str]]:
    """Background task name and ``crystalrep probe`` arguments that store what :func:`ready` looks for."""
    argv = ["probe", "--dataset", ref.name, "--property", prop, "--encoders", ",".join(names), "--split", split,
            "--seed", str(SEED), "--n-splits", str(N_SPLITS), "--json"]
    argv += ["--element", element] if element is not None else []
    argv += ["--curve", ",".join(map(str, SIZES))] if curve else []
    return task_key("probes", {"embeddings": [embeddings.key(ref, n) for n in names], "argv": argv}), argv
