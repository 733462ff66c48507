"""Run an encoder over a dataset in batches and keep the matrix in the store.

The store key is ``content_key({dataset fingerprint, encoder fingerprint})``: the same crystals
and the same encoder (code, weights, config) always map to the same artifact, which is written
in one atomic step after the last batch, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.store import Store, content_key

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = [
    "EMBEDDINGS_KIND",
    "embed_dataset",
    "embed_structures",
    "embedding_key",
    "library_versions",
    "load_embedding",
]

logger = logging.getLogger(__name__)

EMBEDDINGS_KIND = "embeddings"
SMALL_QUERY = 8  # at most this many structures are embedded on one torch thread
_THREADS_LOCK = threading.Lock()
_PACKAGES = ("crystalrep", "numpy", "torch", "torch_geometric", "pymatgen", "vesin", "chgnet",
             "matminer", "dscribe")


def library_versions() -> dict[str, str]:
    """Installed versions of the packages an embedding can depend on."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return versions


def _encoder(encoder: Encoder | str) -> Encoder:
    if isinstance(encoder, str):
        from crystalrep.encoders import get_encoder

        return get_encoder(encoder)
    return encoder


def _device_name(encoder: Encoder, device: str) -> str:
    if not encoder.uses_torch:
        return "cpu"
    from crystalrep.device import resolve_device

    return str(resolve_device(device))


def embedding_key(dataset: Dataset, encoder: Encoder | str) -> str:
    """Store key of a dataset's embedding by an encoder."""
    enc = _encoder(encoder)
    return content_key({"dataset": dataset.fingerprint, "encoder": enc.fingerprint})


def load_embedding(
    dataset: Dataset, encoder: Encoder | str, *, store: Store | None = None
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Return a cached ``(array, meta)`` without computing anything, or ``None``."""
    store = store or Store()
    return store.load_array(EMBEDDINGS_KIND, embedding_key(dataset, encoder))


def embed_dataset(
    dataset: Dataset,
    encoder: Encoder | str,
    *,
    store: Store | None = None,
    device: str = "auto",
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    recompute: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed every crystal of ``dataset`` (cached in the store under kind ``"embeddings"``).

    Args:
        dataset: The crystals, in row order.
        encoder: An encoder or a registry name (see :func:`crystalrep.encoders.get_encoder`).
        store: Where to cache; defaults to ``Store()`` under ``$CRYSTALREP_HOME``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: Crystals per batch.
        progress: Called as ``progress(done, total)``; not called on a cache hit.
        recompute: Ignore a cached result and overwrite it.

    Returns:
        ``(array, meta)``: float32 ``[len(dataset), dim]`` and the stored metadata plus
        ``cache_hit`` (bool) and ``key``.

    Raises:
        ValueError: For an unknown encoder or device, or a malformed encoder output.
    """
    enc = _encoder(encoder)
    store = store or Store()
    key = embedding_key(dataset, enc)
    if not recompute:
        cached = store.load_array(EMBEDDINGS_KIND, key)
        if cached is not None and cached[0].shape == (len(dataset), enc.dim) and cached[0].dtype == np.float32:
            array, meta = cached
            logger.info("Embedding %s of %s: cache hit (%s)", enc.name, dataset.name, key)
            return array, {**meta, "cache_hit": True, "key": key}
        recompute = cached is not None  # verified but of the wrong shape: replace it
    device_name = _device_name(enc, device)
    start = time.perf_counter()
    array = enc.embed_dataset(dataset, device=device_name, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - start
    expected = (len(dataset), enc.dim)
    if array.shape != expected or array.dtype != np.float32:
        raise ValueError(f"Encoder {enc.name} returned {array.dtype}{array.shape}, expected float32{expected}.")
    meta = {
        "encoder": enc.info(),
        "encoder_id": enc.name,
        "encoder_version": enc.version,
        "encoder_fingerprint": enc.fingerprint,
        "encoder_run": dict(enc.last_run_info),
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "n": len(dataset),
        "dim": enc.dim,
        "device": device_name,
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "structures_per_second": round(len(dataset) / seconds, 2) if seconds > 0 else None,
        "libraries": library_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.save_array(EMBEDDINGS_KIND, key, array, meta, replace=recompute)
    logger.info("Embedded %d crystals of %s with %s in %.1f s", len(dataset), dataset.name, enc.name, seconds)
    return array, {**meta, "cache_hit": False, "key": key}


def embed_structures(
    structures: Sequence[Structure],
    encoder: Encoder | str,
    *,
    device: str = "auto",
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed new crystals (e.g. an upload) exactly as a dataset is embedded; nothing is cached.

    Args:
        structures: pymatgen Structures.
        encoder: An encoder or a registry name; use the dataset's encoder so rows are comparable.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: Crystals per batch.
        progress: Called as ``progress(done, total)``.

    Returns:
        float32 array ``[len(structures), dim]``.

    Up to ``SMALL_QUERY`` structures (a retrieval upload) run on one torch thread, which is
    faster for so little work; the previous thread count is restored afterwards.
    """
    enc = _encoder(encoder)
    if len(structures) == 0:
        return np.zeros((0, enc.dim), dtype=np.float32)
    with _one_torch_thread(enc.uses_torch and len(structures) <= SMALL_QUERY):
        return enc.embed_structures(
            list(structures), device=_device_name(enc, device), batch_size=batch_size, progress=progress
        )


@contextmanager
def _one_torch_thread(active: bool) -> Iterator[None]:
    """Run torch on one CPU thread for the duration, then restore the previous count.

    A few small crystals are too little work to share: for one to eight of them (CGCNN,
    CHGNet) one thread was 2-20x faster than the default pool, whose hand-offs outweigh the
    work. The lock keeps overlapping callers (Streamlit sessions are threads) from restoring
    each other's temporary value.
    """
    if not active:
        yield
        return
    import torch

    with _THREADS_LOCK:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
