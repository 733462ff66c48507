"""Embed a whole dataset in shards, locally or on Ray, and keep the matrix in the store.

The result is one artifact (kind ``"embeddings"``, key from the dataset and encoder
fingerprints), assembled from the shards and written in one atomic step after the last one.
Finished shards are kept on disk meanwhile (:mod:`crystalrep.embed.files`), so a killed run
loses at most the shards in flight: the next call with the same dataset and encoder reuses them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.embed.core import (
    EMBEDDINGS_KIND,
    device_name,
    embedding_key,
    library_versions,
    resolve_encoder,
)
from crystalrep.embed.files import ShardFolder
from crystalrep.embed.shards import (
    DEFAULT_BATCH_ATOMS,
    Shard,
    check_batches,
    dataset_shards,
    embed_shard,
    merge_run_info,
)
from crystalrep.store import Store

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = ["embed_dataset"]

logger = logging.getLogger(__name__)


def embed_dataset(
    dataset: Dataset,
    encoder: Encoder | str,
    *,
    store: Store | None = None,
    device: str = "auto",
    batch_size: int = 64,
    batch_atoms: int = DEFAULT_BATCH_ATOMS,
    shard_rows: int | None = None,
    ray: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    recompute: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed every crystal of ``dataset`` (cached in the store under kind ``"embeddings"``).

    Args:
        dataset: The crystals, in row order.
        encoder: An encoder or a registry name (see :func:`crystalrep.encoders.get_encoder`).
        store: Where to cache; defaults to ``Store()`` under ``$CRYSTALREP_HOME``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: At most this many crystals per batch.
        batch_atoms: At most this many atoms per batch (a larger crystal is a batch alone).
        shard_rows: Rows per shard, the unit written to disk, resumed and sent to a worker
            (default: the dataset's own blocks, at most ``DEFAULT_SHARD_ROWS`` rows each).
        ray: ``None`` to run here; ``"local"`` for a Ray started on this machine for the call;
            else a Ray address (``HOST:PORT``) to fan the shards out to that cluster.
        workers: Ray workers (default: one per GPU of the cluster, else one per CPU).
        progress: Called as ``progress(done, total)`` in rows; not called on a cache hit.
        recompute: Ignore a cached result (and finished shards) and overwrite it.

    Returns:
        ``(array, meta)``: float32 ``[len(dataset), dim]`` and the stored metadata plus
        ``cache_hit`` (bool) and ``key``.

    Raises:
        ValueError: For an unknown encoder or device, a bad limit, or a malformed encoder output.
    """
    enc = resolve_encoder(encoder)
    check_batches(batch_atoms=batch_atoms, batch_size=batch_size)
    store = store or Store()
    key = embedding_key(dataset, enc)
    if not recompute:
        cached = store.load_array(EMBEDDINGS_KIND, key)
        if cached is not None and cached[0].shape == (len(dataset), enc.dim) and cached[0].dtype == np.float32:
            array, meta = cached
            logger.info("Embedding %s of %s: cache hit (%s)", enc.name, dataset.name, key)
            return array, {**meta, "cache_hit": True, "key": key}
        recompute = cached is not None  # verified but of the wrong shape: replace it
    run = _Precompute(dataset, enc, ShardFolder(store, key), dataset_shards(dataset, shard_rows), progress)
    if recompute:
        run.folder.clear()
    run.resume()
    start = time.perf_counter()
    if ray is None or not run.todo:  # every shard resumed: no cluster to start
        used_device = device_name(enc, device)
        run.local(device=used_device, batch_atoms=batch_atoms, batch_size=batch_size)
        engine: dict[str, Any] = {"engine": "local"}
    else:
        from crystalrep.embed.remote import embed_on_ray

        engine = embed_on_ray(enc, dataset, run.todo, run.accept, address=None if ray == "local" else ray,
                              device=device, batch_atoms=batch_atoms, batch_size=batch_size, workers=workers)
        used_device = engine.pop("device")
    seconds = time.perf_counter() - start
    computed = len(dataset) - run.resumed_rows
    meta = {
        "encoder": enc.info(),
        "encoder_id": enc.name,
        "encoder_version": enc.version,
        "encoder_fingerprint": enc.fingerprint,
        "encoder_run": merge_run_info(sorted(run.infos.items())),
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "n": len(dataset),
        "dim": enc.dim,
        "device": used_device,
        "batch_size": batch_size,
        "batch_atoms": batch_atoms,
        "shard_rows": max((len(s) for s in run.shards), default=0),
        "shards": len(run.shards),
        "shards_resumed": len(run.shards) - len(run.todo),
        **engine,
        "seconds": round(seconds, 3),
        "structures_per_second": round(computed / seconds, 2) if seconds > 0 and computed else None,
        "libraries": library_versions(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.save_array(EMBEDDINGS_KIND, key, run.out, meta, replace=recompute)
    run.folder.clear()
    logger.info("Embedded %d crystals of %s with %s in %.1f s (%d of %d shards resumed)", computed, dataset.name,
                enc.name, seconds, meta["shards_resumed"], len(run.shards))
    return run.out, {**meta, "cache_hit": False, "key": key}


class _Precompute:
    """One run's output matrix, its shards (finished and to do) and their run facts."""

    def __init__(self, dataset: Dataset, encoder: Encoder, folder: ShardFolder, shards: list[Shard],
                 progress: Callable[[int, int], None] | None) -> None:
        self.dataset, self.encoder, self.folder, self.shards = dataset, encoder, folder, shards
        self.progress = progress
        self.out = np.empty((len(dataset), encoder.dim), dtype=np.float32)
        self.infos: dict[int, dict[str, Any]] = {}
        self.todo: list[Shard] = list(shards)
        self.resumed_rows = 0
        self.done_rows = 0
        self.keep_shards = len(shards) > 1  # a single shard has nothing to resume from

    def resume(self) -> None:
        """Take every finished, intact shard from disk; the rest stay to do."""
        todo = []
        for shard in self.shards:
            hit = self.folder.load(shard, self.encoder.dim) if self.keep_shards else None
            if hit is None:
                todo.append(shard)
                continue
            self.out[shard.start:shard.stop], self.infos[shard.start] = hit
            self.resumed_rows += len(shard)
        self.todo, self.done_rows = todo, self.resumed_rows
        if self.resumed_rows:
            logger.info("resuming: %d of %d shards already embedded", len(self.shards) - len(todo), len(self.shards))
            if self.progress is not None:
                self.progress(self.done_rows, len(self.dataset))

    def accept(self, shard: Shard, array: np.ndarray, info: dict[str, Any]) -> None:
        """Keep one computed shard (in memory and, when there are several, on disk)."""
        if array.shape != (len(shard), self.encoder.dim) or array.dtype != np.float32:
            raise ValueError(f"Encoder {self.encoder.name} returned {array.dtype}{array.shape} for {shard.name}, "
                             f"expected float32{(len(shard), self.encoder.dim)}.")
        self.out[shard.start:shard.stop] = array
        self.infos[shard.start] = info
        if self.keep_shards:
            self.folder.save(shard, array, info)
        self.done_rows += len(shard)
        if self.progress is not None:
            self.progress(self.done_rows, len(self.dataset))

    def local(self, *, device: str, batch_atoms: int, batch_size: int) -> None:
        """Embed the remaining shards in this process, one after the other."""
        for shard in self.todo:
            part = self.dataset.subset(np.arange(shard.start, shard.stop))
            base = self.done_rows

            def report(done: int, base: int = base, size: int = len(part)) -> None:
                if self.progress is not None and done < size:
                    self.progress(base + done, len(self.dataset))

            array, info = embed_shard(self.encoder, part, device=device, batch_atoms=batch_atoms,
                                      batch_size=batch_size, progress=report)
            self.accept(shard, array, info)
