"""The parts of embedding every path shares: store keys, encoder lookup, uploads, versions.

The store key is ``content_key({dataset fingerprint, encoder fingerprint})``: the same crystals
and the same encoder (code, weights, config) always map to the same artifact.
"""

from __future__ import annotations

import threading
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


def resolve_encoder(encoder: Encoder | str) -> Encoder:
    """An encoder as given, or the registry's encoder of that name."""
    if isinstance(encoder, str):
        from crystalrep.encoders import get_encoder

        return get_encoder(encoder)
    return encoder


def device_name(encoder: Encoder, device: str) -> str:
    """The device an encoder runs on here (``"cpu"`` for descriptors, which ignore it)."""
    if not encoder.uses_torch:
        return "cpu"
    from crystalrep.device import resolve_device

    return str(resolve_device(device))


def embedding_key(dataset: Dataset, encoder: Encoder | str) -> str:
    """Store key of a dataset's embedding by an encoder."""
    enc = resolve_encoder(encoder)
    return content_key({"dataset": dataset.fingerprint, "encoder": enc.fingerprint})


def load_embedding(
    dataset: Dataset, encoder: Encoder | str, *, store: Store | None = None
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """Return a cached ``(array, meta)`` without computing anything, or ``None``."""
    store = store or Store()
    return store.load_array(EMBEDDINGS_KIND, embedding_key(dataset, encoder))


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
    enc = resolve_encoder(encoder)
    if len(structures) == 0:
        return np.zeros((0, enc.dim), dtype=np.float32)
    with _one_torch_thread(enc.uses_torch and len(structures) <= SMALL_QUERY):
        return enc.embed_structures(
            list(structures), device=device_name(enc, device), batch_size=batch_size, progress=progress
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
