"""Embeddings for the pages: loaded once per (dataset, encoder), computed with a progress bar when missing.

Keys are what made the array: the dataset's :class:`~ui.cache.DatasetRef` and the encoder's store
key (dataset fingerprint + encoder fingerprint), so a retrained checkpoint is never served stale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.cache import DatasetRef, dataset, has_embeddings

if TYPE_CHECKING:
    import numpy as np

    from crystalrep.encoders import Encoder

# Above this many crystal-encodings a page asks before computing (CHGNet runs ~200 crystals/s on CPU).
AUTO_COMPUTE_LIMIT = 12_000


def _stamp(name: str) -> str:
    """What identifies a ``cgcnn@`` encoder's weights on disk (path + mtime); empty for built-ins."""
    from crystalrep.encoders import CHECKPOINT_PREFIX, resolve_checkpoint

    if not name.startswith(CHECKPOINT_PREFIX):
        return ""
    path = resolve_checkpoint(name[len(CHECKPOINT_PREFIX):])
    return f"{path}:{path.stat().st_mtime_ns}"


@st.cache_resource(max_entries=16, show_spinner="Loading encoder…")
def _encoder(name: str, stamp: str) -> Encoder:
    from crystalrep.encoders import get_encoder

    return get_encoder(name)


def encoder(name: str) -> Encoder:
    """The encoder of that name, built once per process (and again when its checkpoint changes)."""
    return _encoder(name, _stamp(name))


@st.cache_data(max_entries=256, show_spinner=False)
def store_key(ref: DatasetRef, name: str, stamp: str) -> str:
    """Store key of the dataset's embedding by this encoder (:func:`crystalrep.embed.embedding_key`)."""
    from crystalrep.embed import embedding_key

    return embedding_key(dataset(ref), _encoder(name, stamp))


class _NotStored(LookupError):
    """Raised inside the cached loader, so a miss is not remembered (Streamlit caches no exception)."""


@st.cache_resource(max_entries=32, show_spinner=False)
def _load(key: str) -> tuple[np.ndarray, dict[str, Any]]:
    from crystalrep.embed import EMBEDDINGS_KIND
    from crystalrep.store import Store

    hit = Store().load_array(EMBEDDINGS_KIND, key)
    if hit is None:
        raise _NotStored(key)
    return hit


def key(ref: DatasetRef, name: str) -> str:
    """The store key of (dataset, encoder)."""
    return store_key(ref, name, _stamp(name))


def cached(ref: DatasetRef, name: str) -> tuple[np.ndarray, dict[str, Any]] | None:
    """``(array, meta)`` if the store holds this embedding; never computes. Treat the array as read-only."""
    try:
        return _load(key(ref, name))
    except _NotStored:  # not remembered: it may be computed on the next run, and other hits stay cached
        return None


def missing(ref: DatasetRef, names: list[str]) -> list[str]:
    """The encoders whose embedding of this dataset is not in the store yet."""
    return [n for n in names if cached(ref, n) is None]


def status(ref: DatasetRef, names: list[str]) -> list[dict[str, Any]]:
    """One row per encoder, as text for display: stored or not, and for stored ones dim, device,
    seconds, rate and creation time (``"–"`` where the store holds no value, never ``None``)."""
    rows = []
    stored = has_embeddings(ref)  # if nothing of this dataset is stored, no encoder is built to say "not yet"
    for name in names:
        hit = cached(ref, name) if stored else None
        meta = hit[1] if hit else {}

        def shown(field: str, fmt: str = "{}", meta: dict[str, Any] = meta) -> str:
            value = meta.get(field)
            return "–" if value is None else fmt.format(value)

        rows.append({"encoder": name, "stored": "yes" if hit is not None else "not yet", "dim": shown("dim"),
                     "device": shown("device"), "seconds": shown("seconds", "{:.1f}"),
                     "crystals/s": shown("structures_per_second", "{:,.0f}"),
                     "created": shown("created").replace("T", " ").split("+")[0]})
    return rows


def compute(ref: DatasetRef, names: list[str]) -> None:
    """Embed the dataset with each encoder that is missing, with a progress bar per encoder."""
    from crystalrep.embed import embed_dataset

    ds = dataset(ref)
    for name in missing(ref, names):
        bar = st.progress(0.0, text=f"Embedding {len(ds):,} crystals with {name}…")

        def progress(done: int, total: int, bar: Any = bar, name: str = name) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=f"{name}: {done:,} of {total:,} crystals")

        embed_dataset(ds, encoder(name), progress=progress)
        bar.empty()


def require(ref: DatasetRef, names: list[str], *, where: str) -> dict[str, np.ndarray]:
    """The embeddings a page needs, computing the missing ones (asking first when the job is large).

    Stops the page with an explanation when nothing is chosen or the user has not started a large
    computation yet. ``where`` names the page, so its button keys are unique.
    """
    if not names:
        st.info("Choose at least one encoder in the sidebar.")
        st.stop()
    todo = missing(ref, names)
    if todo:
        work = len(dataset(ref)) * len(todo)
        if work <= AUTO_COMPUTE_LIMIT or st.button(
                f"Compute {len(todo)} missing embedding(s): {', '.join(todo)}", key=f"{where}.embed", type="primary"):
            compute(ref, todo)
        else:
            st.info(f"{', '.join(todo)} {'has' if len(todo) == 1 else 'have'} not embedded this dataset yet "
                    f"({work:,} crystal-encodings). Press the button, or run "
                    f"`crystalrep embed --dataset {ref.name} --encoder {','.join(todo)}` in a terminal.")
            st.stop()
    out = {}
    for name in names:
        hit = cached(ref, name)
        if hit is None:  # the store refused to write (disk full?); say so instead of failing later
            st.error(f"The {name} embedding could not be stored; check free disk space under the crystalrep home.")
            st.stop()
        out[name] = hit[0]
    return out
