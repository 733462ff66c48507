"""Embeddings for pages that compare encoders, leaving out (with one sentence) any encoder that refuses the dataset.

:func:`ui.embeddings.require` raises when an encoder cannot embed some crystal (CHGNet and SOAP
stop at Z = 94, for example). Here the remaining encoders still run, and the refusal is remembered
per process by embedding key, so later reruns do not retry a computation that cannot succeed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui import embeddings
from ui.cache import DatasetRef
from ui.messages import sentence

if TYPE_CHECKING:
    import numpy as np


@st.cache_resource
def _refusals() -> dict[str, str]:
    """Embedding key -> why the encoder refused (shared by all sessions of this server)."""
    return {}


def _left_out(name: str, exc: BaseException) -> str:
    return f"{name} cannot embed this dataset ({sentence(exc).rstrip('.')}), so it is left out here."


def require(ref: DatasetRef, names: list[str], *, where: str) -> dict[str, np.ndarray]:
    """Like :func:`ui.embeddings.require`, minus encoders that fail on this dataset (each named in a warning).

    Stops the page with an explanation when no chosen encoder is left.
    """
    refused = _refusals()
    keys = {n: embeddings.key(ref, n) for n in names}
    ok = [n for n in names if keys[n] not in refused]
    out: dict[str, np.ndarray] = {}
    if ok or not names:  # with no names, embeddings.require says to choose one
        holder = st.empty()
        try:
            with holder.container():
                out = embeddings.require(ref, ok, where=where)
        except ValueError:
            holder.empty()  # drop the failed run's progress bar
            for name in ok:
                try:
                    out.update(embeddings.require(ref, [name], where=f"{where}.{name}"))
                except ValueError as exc:
                    refused[keys[name]] = _left_out(name, exc)
    for name in names:
        if keys[name] in refused:
            st.warning(refused[keys[name]])
    if names and not out:
        st.info("None of the chosen encoders can embed this dataset; choose another encoder in the sidebar.")
        st.stop()
    return out


def available(ref: DatasetRef, names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embeddings of ``names`` without stopping the page: ``(arrays, {encoder: why it is left out})``.

    Missing embeddings are computed one encoder at a time (progress bar); a refusal is remembered
    like :func:`require`'s, and the caller decides how to show the sentences.
    """
    refused, out, failed = _refusals(), {}, {}
    for name in dict.fromkeys(names):
        try:
            key = embeddings.key(ref, name)
        except (ValueError, OSError) as exc:  # a checkpoint that vanished or cannot be read
            failed[name] = f"{name} cannot be loaded ({sentence(exc).rstrip('.')})."
            continue
        if key not in refused and embeddings.cached(ref, name) is None:
            slot = st.empty()
            try:
                with slot.container():
                    embeddings.compute(ref, [name])
            except ValueError as exc:
                refused[key] = _left_out(name, exc)
            finally:
                slot.empty()
        hit = None if key in refused else embeddings.cached(ref, name)
        if key in refused:
            failed[name] = refused[key]
        elif hit is None:
            failed[name] = f"The {name} embedding could not be stored (disk full?)."
        else:
            out[name] = hit[0]
    return out, failed
