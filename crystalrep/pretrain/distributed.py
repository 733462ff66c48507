"""Data-parallel pretraining on Ray Train: ``TorchTrainer`` workers in DDP (gloo on CPU, NCCL on GPU).

Each optimisation step takes the same ``batch_size`` crystals as one worker would and splits them
over the workers; DDP averages the gradients, so the step count and the learning-rate schedule
are those of a single process. Each worker draws its views and noise from its own generator,
seeded by ``(seed, epoch, rank)``, so a resumed run repeats an uninterrupted one.

The driver (the ``crystalrep pretrain`` process, i.e. the job) owns the run folder: rank 0 sends
each epoch's checkpoint through a Ray queue and the driver writes it with the same atomic writes
as the single-process trainer, so the cluster needs no shared file system and a job resumes from
its last epoch exactly as before.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalrep.datasets import Dataset
from crystalrep.encoders.cgcnn import CGCNNConfig, config_from_dict
from crystalrep.pretrain import PretrainConfig
from crystalrep.pretrain.loop import (
    Run,
    check_resume,
    chunks,
    epoch_files,
    epoch_generators,
    evaluate,
    to_device,
)
from crystalrep.pretrain.records import find_resume_point, metrics_csv, write_epoch
from crystalrep.store import atomic_write_text

__all__ = ["DistributedTrainingError", "pretrain_distributed"]

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
_TRAIN_DIR = ".ray-train"  # Ray Train's own run records, removed after a successful run


class DistributedTrainingError(RuntimeError):
    """A Ray Train worker failed; the message carries the worker's own error."""


def pretrain_distributed(
    dataset: Dataset,
    config: PretrainConfig,
    *,
    out_dir: str | Path,
    resume: bool = False,
    encoder_config: CGCNNConfig | None = None,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Pretrain with ``config.workers`` DDP workers on Ray; same arguments and folder as ``pretrain``.

    Raises:
        ValueError: On a changed configuration or dataset on resume, too few crystals, a diverged
            loss, or more workers (or CUDA) than the cluster offers.
        DistributedTrainingError: If a worker fails for another reason.
        crystalrep.cluster.ClusterError: If Ray cannot be started or reached.
    """
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    from crystalrep.cluster import ray_session
    from crystalrep.pretrain.loop import split_indices

    out = Path(out_dir).resolve()
    split_indices(len(dataset), config)  # too few crystals fails here, not in every worker
    found = find_resume_point(out) if resume else None
    history: list[dict[str, Any]] = []
    if found:
        check_resume(found, config, dataset, out)
        history = [row for row in found[1].meta["history"] if row["epoch"] <= found[0]]
        atomic_write_text(out / "metrics.csv", metrics_csv(history))
        if found[0] >= config.epochs:
            return history
    with ray_session(config.ray_address) as session:
        use_gpu = config.device != "cpu" and session.gpus > 0
        if config.device.startswith("cuda") and not use_gpu:
            raise ValueError(f"device {config.device!r} was requested but the Ray cluster has no GPU.")
        slots = session.gpus if use_gpu else session.cpus
        if config.workers > slots:
            raise ValueError(f"{config.workers} workers asked for; the Ray cluster offers {slots} "
                             f"{'GPUs' if use_gpu else 'CPUs'}.")
        events = Queue(actor_options={"num_cpus": 0})
        loop_config = {"dataset": ray.put(dataset), "found": ray.put(found) if found else None,
                       "config": config.to_dict(), "meta": meta or {}, "where": str(out), "events": events,
                       "encoder_config": asdict(encoder_config) if encoder_config is not None else None}
        trainer = TorchTrainer(
            _worker_loop, train_loop_config=loop_config,
            scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": 1, **({"GPU": 1} if use_gpu else {})}),
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            run_config=RunConfig(name="pretrain", storage_path=str(out / _TRAIN_DIR)))
        failure: list[BaseException] = []
        fit = threading.Thread(target=_fit, args=(trainer, failure), name="ray-train-fit", daemon=True)
        fit.start()
        log.info("pretraining on Ray (%s): %d %s workers", session.address, config.workers, "GPU" if use_gpu else "CPU")
        while fit.is_alive() or not events.empty():
            try:
                kind, payload = events.get(timeout=0.5)
            except Empty:
                continue
            if kind == "progress" and progress is not None:
                progress(*payload)
            elif kind == "epoch":
                epoch, files = payload
                write_epoch(out, epoch, files)
                history = files["history"]
                if on_epoch is not None:
                    on_epoch(history[-1])
        fit.join()
    if failure:
        raise _as_error(failure[0])
    shutil.rmtree(out / _TRAIN_DIR, ignore_errors=True)
    return history


def _fit(trainer: Any, failure: list[BaseException]) -> None:
    try:
        trainer.fit()
    except Exception as exc:  # noqa: BLE001 - handed to the main thread, which raises it
        failure.append(exc)


def _as_error(exc: BaseException) -> Exception:
    """A worker's ``ValueError`` (divergence, bad options) as itself, anything else wrapped."""
    text = str(exc)
    for line in text.splitlines():
        if line.startswith("ValueError: "):
            return ValueError(line.removeprefix("ValueError: "))
    first = next((line for line in reversed(text.splitlines()) if line.strip()), type(exc).__name__)
    return DistributedTrainingError(f"distributed pretraining failed: {first.strip()}")


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: build the run like the single-process trainer, wrap it in DDP, train."""
    import ray
    import ray.train
    import ray.train.torch
    from torch.nn.parallel import DistributedDataParallel

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    config = PretrainConfig.from_dict(loop_config["config"])
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    found = ray.get(loop_config["found"]) if loop_config["found"] is not None else None
    enc_cfg = loop_config["encoder_config"]
    run = Run(ray.get(loop_config["dataset"]), config, found=found, meta=loop_config["meta"], where=loop_config["where"],
               encoder_config=config_from_dict(enc_cfg) if enc_cfg is not None else None,
               device=ray.train.torch.get_device())
    cuda = run.device.type == "cuda"
    # only contrastive trains through the readout and head; the other tasks leave them unused
    ddp = DistributedDataParallel(run.task, device_ids=[run.device] if cuda else None,
                                  find_unused_parameters=config.task != "contrastive")
    events = loop_config["events"] if rank == 0 else None
    for epoch in range(run.start, config.epochs + 1):
        row = _epoch(run, ddp, epoch, rank, world, events)
        if events is not None:
            events.put(("epoch", (epoch, epoch_files(run, epoch, row))))


def _epoch(run: Run, ddp: Any, epoch: int, rank: int, world: int, events: Any) -> dict[str, Any]:
    """One epoch on this worker's part of every batch; losses are summed over workers."""
    import torch.distributed as dist

    config, task = run.config, run.task
    t0 = time.perf_counter()
    task.train()
    order_rng, _ = epoch_generators(config.seed, epoch)  # the same order on every worker
    own = np.random.default_rng([config.seed, epoch, rank])
    gen = torch.Generator().manual_seed(int(own.integers(2**62)))
    batches = chunks(run.train_pos[order_rng.permutation(len(run.train_pos))], config.batch_size)
    loss_sum, norm_sum, last = 0.0, 0.0, time.monotonic()
    for b, chunk in enumerate(batches):
        part = np.array_split(chunk, world)[rank]
        loss = ddp(to_device(task.make_batch(part, run.corpus, own), run.device), gen)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(task.parameters(), config.grad_clip))
        if not math.isfinite(norm):  # averaged gradients: every worker sees the same norm and stops
            raise ValueError(f"training diverged at epoch {epoch} (gradient norm {norm}); lower the learning rate.")
        run.optimizer.step()
        run.scheduler.step()
        loss_sum += float(loss.detach()) * len(part)
        norm_sum += norm
        if events is not None and (time.monotonic() - last > PROGRESS_EVERY_S or b == len(batches) - 1):
            events.put(("progress", ((epoch - 1) * run.n_batches + b + 1, config.epochs * run.n_batches)))
            last = time.monotonic()
    train_s = time.perf_counter() - t0
    # rank 0 validates alone, exactly as one process would (a contrastive loss needs the whole split)
    val = evaluate(task, run.corpus, run.val_pos, config, run.device) if rank == 0 else 0.0
    sums = torch.tensor([loss_sum, val], dtype=torch.float64)
    if run.device.type == "cuda":
        sums = sums.to(run.device)
    dist.all_reduce(sums)
    total_loss, val_loss = (float(x) for x in sums.cpu())
    row = {"epoch": epoch, "loss": total_loss / len(run.train_pos), "val_loss": val_loss,
           "grad_norm": norm_sum / run.n_batches, "structures_per_s": len(run.train_pos) / train_s,
           "seconds": time.perf_counter() - t0}
    run.history.append(row)
    return row
