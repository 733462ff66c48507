"""Shards fanned out to Ray workers: one actor per worker, the model loaded once per actor.

The driver (the ``crystalrep embed`` process) ships the encoder to the cluster once
(``ray.put``); each actor unpickles it in its constructor and keeps it for every shard it is
given. The driver sends each shard's rows, keeps two shards in flight per actor, and writes
every result to disk itself as it arrives, so the cluster needs no shared file system and a
killed driver resumes like a local run. Actors ask for one GPU each when the cluster has GPUs
(and the encoder uses torch), else one CPU. Shards are cut into the same atom-sized batches as
locally, so the matrix equals the single-process one.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.embed.shards import Shard, embed_shard

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = ["IN_FLIGHT", "ShardWorker", "embed_on_ray"]

log = logging.getLogger(__name__)

IN_FLIGHT = 2  # shards queued per actor: the next one is already there when one finishes


class ShardWorker:
    """A Ray actor's state: one encoder, loaded once, embedding the shards sent to it.

    Args:
        encoder: The encoder (arrives pickled, once per actor).
        device: ``"cuda"`` for a GPU actor, else ``"cpu"``.
        batch_atoms: Atom budget of one batch.
        batch_size: Crystal budget of one batch.
    """

    def __init__(self, encoder: Encoder, device: str, batch_atoms: int, batch_size: int) -> None:
        self.encoder, self.device = encoder, device
        self.batch_atoms, self.batch_size = batch_atoms, batch_size
        self.shards = 0

    def embed(self, part: Dataset) -> tuple[np.ndarray, dict[str, Any]]:
        """Embed one shard's rows; the info names this actor's process and encoder object."""
        array, info = embed_shard(self.encoder, part, device=self.device, batch_atoms=self.batch_atoms,
                                  batch_size=self.batch_size)
        self.shards += 1
        return array, {**info, "worker": f"{os.uname().nodename}:{os.getpid()}:{id(self.encoder)}"}


def embed_on_ray(
    encoder: Encoder,
    dataset: Dataset,
    shards: list[Shard],
    accept: Callable[[Shard, np.ndarray, dict[str, Any]], None],
    *,
    address: str | None,
    device: str,
    batch_atoms: int,
    batch_size: int,
    workers: int | None,
) -> dict[str, Any]:
    """Embed ``shards`` of ``dataset`` on Ray, calling ``accept(shard, array, info)`` as each arrives.

    Args:
        encoder: The encoder to ship once to every actor.
        dataset: The whole dataset (only the shards' rows travel).
        shards: Shards still to embed.
        accept: Keeps one result (in the output matrix and on disk).
        address: A cluster's ``HOST:PORT``, or ``None`` for a Ray started here for the call.
        device: ``"auto"`` (GPU actors where the cluster has GPUs), ``"cpu"`` or ``"cuda"``.
        batch_atoms: Atom budget of one batch.
        batch_size: Crystal budget of one batch.
        workers: Number of actors (default: one per GPU, else one per CPU of the cluster).

    Returns:
        Provenance: engine, address, workers, GPUs per worker, model loads, device.

    Raises:
        ValueError: If CUDA is asked for and the cluster has no GPU, or ``workers`` < 1.
        crystalrep.cluster.ClusterError: If Ray cannot be started or reached.
    """
    import ray

    from crystalrep.cluster import ray_session

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}.")
    with ray_session(address) as session:
        use_gpu = encoder.uses_torch and device != "cpu" and session.gpus > 0
        if device.startswith("cuda") and not use_gpu:
            raise ValueError(f"Device {device!r} was requested but the Ray cluster at {session.address} has no GPU.")
        capacity = session.gpus if use_gpu else max(1, session.cpus)
        n_actors = max(1, min(workers or capacity, len(shards)))
        loads: set[str] = set()
        if shards:
            actor = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(ShardWorker)
            encoder_ref = ray.put(encoder)
            actors: list[Any] = [actor.remote(encoder_ref, "cuda" if use_gpu else "cpu", batch_atoms, batch_size)
                      for _ in range(n_actors)]
            try:
                loads = _drive(dataset, shards, actors, accept)
            finally:
                for handle in actors:
                    ray.kill(handle)
        log.info("embedded %d shards on Ray (%s) with %d workers", len(shards), session.address, n_actors)
        return {"engine": "ray", "ray_address": session.address, "workers": n_actors,
                "gpus_per_worker": 1 if use_gpu else 0, "model_loads": len(loads),
                "device": "cuda" if use_gpu else "cpu"}


def _drive(dataset: Dataset, shards: list[Shard], actors: list[Any],
           accept: Callable[[Shard, np.ndarray, dict[str, Any]], None]) -> set[str]:
    """Keep every actor busy until all shards are back; returns the distinct worker/encoder pairs seen."""
    import ray

    queue = deque(shards)
    pending: dict[Any, tuple[Shard, Any]] = {}

    def submit(handle: Any) -> None:
        shard = queue.popleft()
        part = dataset.subset(np.arange(shard.start, shard.stop))
        pending[handle.embed.remote(part)] = (shard, handle)

    for _ in range(IN_FLIGHT):
        for handle in actors:
            if queue:
                submit(handle)
    seen: set[str] = set()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        shard, handle = pending.pop(ready[0])
        array, info = ray.get(ready[0])
        seen.add(str(info.pop("worker")))
        accept(shard, array, info)
        if queue:
            submit(handle)
    return seen
