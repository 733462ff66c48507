"""One pretraining run's pieces, shared by the single-process and the Ray Train loop.

The split, batches, per-epoch generators and validation; :class:`Run` (model, optimiser,
schedule, corpus, history, fresh or resumed from a checkpoint) and what an epoch writes.
Every random draw of epoch ``e`` comes from generators seeded by ``(seed, e)``, so a resumed
run sees the same shuffles and noise as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalrep.checkpoint import Checkpoint
from crystalrep.datasets import Dataset
from crystalrep.device import resolve_device, seed_everything
from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn, config_from_dict
from crystalrep.graphs import GraphConfig, dataset_graphs
from crystalrep.pretrain import PretrainConfig
from crystalrep.pretrain.tasks import Corpus, PretextTask, build_task

__all__ = ["Run", "check_resume", "chunks", "epoch_files", "epoch_generators", "evaluate", "fresh_encoder_config",
           "split_indices", "to_device"]

log = logging.getLogger(__name__)


def split_indices(n: int, config: PretrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation rows (after the optional ``max_structures`` cut)."""
    order = np.random.default_rng(config.seed).permutation(n)
    if config.max_structures is not None:
        order = order[: config.max_structures]
    n_val = max(1, round(config.val_fraction * len(order))) if config.val_fraction > 0 else 0
    if len(order) - n_val < 2:
        raise ValueError(f"pretraining needs at least 2 training crystals; {len(order)} crystals leave {len(order) - n_val}.")
    return order[n_val:], order[:n_val]


def chunks(positions: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``len // batch_size`` nearly equal batches: no tiny tail (a 1-crystal contrastive batch has no negatives)."""
    return np.array_split(positions, max(1, len(positions) // batch_size)) if len(positions) else []


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch (or a pair of views) on ``device``."""
    return tuple(b.to(device) for b in batch) if isinstance(batch, tuple) else batch.to(device)


def epoch_generators(seed: int, epoch: int) -> tuple[np.random.Generator, torch.Generator]:
    """The numpy and torch generators of one epoch, seeded by ``(seed, epoch)``."""
    rng = np.random.default_rng([seed, epoch])
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def evaluate(task: PretextTask, corpus: Corpus, positions: np.ndarray, config: PretrainConfig, device: torch.device) -> float:
    """Validation loss with fixed noise, views and masks (comparable across epochs)."""
    if not len(positions):
        return float("nan")
    rng, gen = epoch_generators(config.seed, 0)
    task.eval()
    total = 0.0
    with torch.no_grad():
        for chunk in chunks(positions, config.batch_size):
            total += float(task(to_device(task.make_batch(chunk, corpus, rng), device), gen)) * len(chunk)
    return total / len(positions)


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    # where and on how many threads a run trains may change on resume; everything else may not
    return {k: v for k, v in options.items() if k not in ("device", "threads", "ray_address")}


def fresh_encoder_config(config: PretrainConfig, encoder_config: CGCNNConfig | None) -> CGCNNConfig:
    """The architecture of a fresh run: ``encoder_config`` (default CGCNN) with ``config.readout``."""
    base = encoder_config or CGCNNConfig()
    if config.readout == base.readout:
        return base
    if encoder_config is not None and encoder_config.readout != "mean":
        raise ValueError(f"encoder_config has readout {encoder_config.readout!r} but the run asks for {config.readout!r}.")
    return replace(base, readout=config.readout)


def check_resume(found: tuple[int, Checkpoint, Checkpoint], config: PretrainConfig, dataset: Dataset,
                 where: Path | str) -> None:
    """Refuse to resume checkpoints made with other options or from other crystals (``ValueError``)."""
    _, state, encoder_ckpt = found
    if _comparable(state.config) != _comparable(config.to_dict()):
        raise ValueError(f"cannot resume {where}: its checkpoints were trained with other options.")
    if encoder_ckpt.meta.get("dataset_fingerprint") != dataset.fingerprint:
        raise ValueError(f"cannot resume {where}: dataset {dataset.name!r} has changed since it was trained.")


class Run:
    """One run's model, optimiser, data and history (set up fresh or from the last checkpoint)."""

    def __init__(self, dataset: Dataset, config: PretrainConfig, *, found: tuple[int, Checkpoint, Checkpoint] | None,
                 encoder_config: CGCNNConfig | None, meta: dict[str, Any] | None, where: Path | str,
                 device: torch.device | None = None) -> None:
        self.config = config
        self.device = device if device is not None else resolve_device(config.device)
        seed_everything(config.seed)
        train_idx, val_idx = split_indices(len(dataset), config)
        self.enc_cfg = config_from_dict(found[2].config) if found else fresh_encoder_config(config, encoder_config)
        self.task = build_task(config, build_cgcnn(self.enc_cfg, seed=config.seed)).to(self.device)
        self.optimizer = torch.optim.AdamW(self.task.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.n_batches = len(chunks(train_idx, config.batch_size))
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.n_batches * config.epochs)
        self.history: list[dict[str, Any]] = []
        self.start = 1
        if found:
            epoch, state, _ = found
            check_resume(found, config, dataset, where)
            self.task.load_state_dict(state.state_dict["task"], strict=True)
            self.optimizer.load_state_dict(state.state_dict["optimizer"])
            self.scheduler.load_state_dict(state.state_dict["scheduler"])
            torch.set_rng_state(state.state_dict["rng"]["torch"])
            self.history = [row for row in state.meta["history"] if row["epoch"] <= epoch]
            self.start = epoch + 1
            log.info("resuming %s at epoch %d", where, self.start)
        used = np.concatenate([train_idx, val_idx])
        subset = dataset.subset(used)
        self.corpus = Corpus(arrays=[subset.arrays(k) for k in range(len(subset))], graphs=None,
                             graph_config=GraphConfig(cutoff=self.enc_cfg.cutoff))
        if self.task.needs_graphs and self.start <= config.epochs:
            self.corpus.graphs = dataset_graphs(subset, config=self.corpus.graph_config)
        self.train_pos, self.val_pos = np.arange(len(train_idx)), np.arange(len(train_idx), len(used))
        self.provenance = {
            "task": config.task, "params": {**config.to_dict(), **self.task.params}, "dataset": dataset.name,
            "dataset_fingerprint": dataset.fingerprint, "n_train": len(train_idx), "n_val": len(val_idx),
            "seed": config.seed, "code_version": _code_version(), "planned_epochs": config.epochs, **(meta or {}),
        }

    def epoch(self, epoch: int, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
        """Train one epoch, validate, write its checkpoint and metrics; return its metrics row."""
        config, task = self.config, self.task
        t0 = time.perf_counter()
        task.train()
        rng, gen = epoch_generators(config.seed, epoch)
        loss_sum, norm_sum = 0.0, 0.0
        for b, chunk in enumerate(chunks(self.train_pos[rng.permutation(len(self.train_pos))], config.batch_size)):
            loss = task(to_device(task.make_batch(chunk, self.corpus, rng), self.device), gen)
            if not torch.isfinite(loss):
                raise ValueError(f"training diverged at epoch {epoch} (loss {float(loss)}); lower the learning rate.")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm_sum += float(torch.nn.utils.clip_grad_norm_(task.parameters(), config.grad_clip))
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += float(loss.detach()) * len(chunk)
            if progress is not None:
                progress((epoch - 1) * self.n_batches + b + 1, config.epochs * self.n_batches)
        train_s = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": loss_sum / len(self.train_pos),
               "val_loss": evaluate(task, self.corpus, self.val_pos, config, self.device),
               "grad_norm": norm_sum / self.n_batches, "structures_per_s": len(self.train_pos) / train_s,
               "seconds": time.perf_counter() - t0}
        self.history.append(row)
        return row


def _code_version() -> dict[str, str]:
    from crystalrep import __version__
    from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

    return {"crystalrep": __version__, "encoder": CGCNNEncoder.version, "torch": str(torch.__version__)}


def epoch_files(run: Run, epoch: int, row: dict[str, Any]) -> dict[str, Any]:
    """What one epoch writes, as plain data on the CPU (a worker ships it to the driver)."""
    rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    state = _cpu({"task": run.task.state_dict(), "optimizer": run.optimizer.state_dict(),
                  "scheduler": run.scheduler.state_dict(), "rng": rng})
    return {"config": run.config.to_dict(), "state": state, "history": list(run.history),
            "encoder_config": asdict(run.enc_cfg), "encoder": _cpu(run.task.encoder.state_dict()),
            "meta": {**run.provenance, "epoch": epoch, "epochs": epoch, "metrics": row}}


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj
