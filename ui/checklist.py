"""Checklist page glue: the checklist of the current view, cached until the store changes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from crystalrep.checklist.build import Checklist, build_checklist
from crystalrep.store import crystalrep_home
from ui import cache, embeddings
from ui.cache import DatasetRef

WATCHED = ("embeddings", "projections", "probes", "views", "checkpoints", "jobs")


def store_stamp() -> str:
    """Modification times of the store folders the checklist reads (a new artifact changes one)."""
    parts = []
    for kind in WATCHED:
        try:
            parts.append(str((crystalrep_home() / kind).stat().st_mtime_ns))
        except OSError:
            parts.append("-")
    return ":".join(parts)


@st.cache_data(max_entries=32, show_spinner="Reading the store…")
def _report(ref: DatasetRef, names: tuple[str, ...], prop: str | None, keys: tuple[str, ...], stamp: str) -> Checklist:
    built = {name: embeddings.encoder(name) for name in names}
    return build_checklist(cache.dataset(ref), built, prop)


def report(ref: DatasetRef, names: Sequence[str], prop: str | None) -> Checklist:
    """The checklist of (dataset, encoders, property); rebuilt when the store or a checkpoint changes."""
    keys = tuple(embeddings.key(ref, n) for n in names)  # a retrained cgcnn@ job changes its key
    return _report(ref, tuple(names), prop, keys, store_stamp())


def _plain(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, Mapping | list | tuple) else value


def frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Evidence or provenance rows as a table (nested values shown as JSON text)."""
    return pd.DataFrame([{k: _plain(v) for k, v in row.items()} for row in rows])
