"""Evaluation in ``workers`` processes: a manifest in the store, helper shards as background tasks.

The main process writes a manifest (the sized plan, the evaluation pools saved in the store, the
checkpoint of every (task, seed)), starts ``workers - 1`` helpers (``crystalrep study eval-shard``,
as :mod:`crystalrep.jobs.background` tasks) and evaluates shard 0 itself. Every item's rows land
in the store's cache, so the main process then walks all items once more: cache hits for what a
helper did, the work itself for anything a helper did not finish (a dead helper costs time, never
rows). Each process runs torch on one thread.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from crystalrep.datasets import Dataset, DatasetError
from crystalrep.store import Store, content_key
from crystalrep.study.backbones import RANDOM, build_encoder
from crystalrep.study.evaluate import EvalSet, evaluate_encoder, prepare
from crystalrep.study.plan import StudyPlan

log = logging.getLogger(__name__)

__all__ = ["run_items", "run_sharded", "run_shard_from_manifest", "work_items"]

KIND, POOL_KIND, MANIFEST = "study_run", "study_pool", "study.json"  # the store keeps its own manifest.json
POLL_S = 2.0
Checkpoints = dict[tuple[str, int], str]


def _save_pool(pool: Dataset, store: Store) -> str:
    key = pool.fingerprint[:16]
    if store.verified(POOL_KIND, key, required=("dataset.parquet", "meta.json")) is None:
        with tempfile.TemporaryDirectory() as tmp:
            pool.save(tmp)
            store.save_files(POOL_KIND, key, {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()})
    return key


def _load_pool(key: str, store: Store) -> Dataset:
    folder = store.verified(POOL_KIND, key, required=("dataset.parquet", "meta.json"))
    if folder is None:
        raise DatasetError(f"evaluation pool {key} is missing or damaged in {store.root}.")
    return Dataset.load(folder)


def work_items(plan: StudyPlan) -> list[tuple[str, str, int, str]]:
    """``(property label, backbone, seed, init)`` of every encoder evaluation, in a fixed order."""
    return [(prop.label, backbone, seed, init) for prop in plan.properties for backbone in plan.backbones
            for seed in plan.seeds for init in (RANDOM, *plan.tasks)]


def run_items(plan: StudyPlan, pools: dict[str, Dataset], checkpoints: Checkpoints, *, store: Store,
              shard: int = 0, shards: int = 1) -> list[dict[str, Any]]:
    """Evaluate items ``shard, shard + shards, ...`` of :func:`work_items`; rows carry their labels."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    evalsets: dict[str, EvalSet] = {}
    props = {p.label: p for p in plan.properties}
    rows: list[dict[str, Any]] = []
    try:
        for i, (label, backbone, seed, init) in enumerate(work_items(plan)):
            if i % shards != shard:
                continue
            if label not in evalsets:
                evalsets[label] = prepare(props[label], pools[label], plan)
            ckpt = None if init == RANDOM else Path(checkpoints[(init, seed)])
            encoder = build_encoder(backbone, init, seed, ckpt)
            rows += [{**row, "property": label, "backbone": backbone, "init": init, "seed": seed, "encoder": encoder.name}
                     for row in evaluate_encoder(encoder, evalsets[label], plan, seed=seed, store=store)]
    finally:
        torch.set_num_threads(previous)
    return rows


def _write_manifest(plan: StudyPlan, pools: dict[str, Dataset], checkpoints: Checkpoints, store: Store) -> str:
    manifest = {"plan": plan.to_dict(), "pools": {label: _save_pool(pool, store) for label, pool in pools.items()},
                "checkpoints": [[task, seed, path] for (task, seed), path in sorted(checkpoints.items())]}
    key = content_key(manifest)
    store.save_files(KIND, key, {MANIFEST: json.dumps(manifest, sort_keys=True).encode()}, replace=True)
    return key


def run_shard_from_manifest(key: str, *, shard: int, shards: int, store: Store | None = None) -> int:
    """A helper's work: load manifest ``key`` and evaluate its shard; returns the rows computed."""
    store = store if store is not None else Store()
    files = store.load_files(KIND, key, required=(MANIFEST,))
    if files is None:
        raise DatasetError(f"no study manifest {key!r} in {store.root}.")
    manifest = json.loads(files[MANIFEST])
    plan = StudyPlan.from_dict(manifest["plan"])
    pools = {label: _load_pool(pool_key, store) for label, pool_key in manifest["pools"].items()}
    checkpoints = {(task, int(seed)): path for task, seed, path in manifest["checkpoints"]}
    return len(run_items(plan, pools, checkpoints, store=store, shard=shard, shards=shards))


def run_sharded(plan: StudyPlan, pools: dict[str, Dataset], checkpoints: Checkpoints, *, store: Store,
                poll_s: float = POLL_S) -> list[dict[str, Any]]:
    """Evaluate every item in ``plan.workers`` processes; returns the rows of all items, in order."""
    from crystalrep.jobs import background

    helpers = []
    if plan.workers > 1:
        key = _write_manifest(plan, pools, checkpoints, store)
        for shard in range(1, plan.workers):
            helpers.append(f"cdssl-eval-{key}-{shard}")
            background.start(["study", "eval-shard", "--manifest", key, "--shard", str(shard),
                              "--shards", str(plan.workers)], key=helpers[-1])
    run_items(plan, pools, checkpoints, store=store, shard=0, shards=plan.workers)
    while any(background.state(task).running for task in helpers):
        time.sleep(poll_s)
    for task in helpers:
        state = background.state(task)
        if state.state != "done":
            log.warning("evaluation helper %s %s (%s); its items are evaluated here", task, state.state, state.message)
    return run_items(plan, pools, checkpoints, store=store)
