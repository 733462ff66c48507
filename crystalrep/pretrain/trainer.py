"""The pretraining loop: AdamW, cosine schedule, clipping, validation, a checkpoint per epoch.

An output folder holds ``checkpoints/epoch-NNN.pt`` (the encoder alone, ``kind="cgcnn"``, so every
epoch is a usable encoder), ``state/epoch-NNN.pt`` (task heads, optimizer, scheduler and RNG,
kept for the last epoch only) and ``metrics.csv``. Writes per epoch go state → checkpoint →
metrics, each atomic, so a run killed at any instant resumes from a consistent last epoch. Every
random draw of epoch ``e`` comes from generators seeded by ``(seed, e)``, so a resumed run sees
the same shuffles and noise as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalrep.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from crystalrep.datasets import Dataset
from crystalrep.device import resolve_device, seed_everything
from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn, config_from_dict
from crystalrep.encoders.cgcnn_encoder import CHECKPOINT_KIND
from crystalrep.graphs import GraphConfig, dataset_graphs
from crystalrep.pretrain import PretrainConfig
from crystalrep.pretrain.tasks import Corpus, PretextTask, build_task
from crystalrep.runs import checkpoint_files, checkpoint_name
from crystalrep.store import atomic_write_text

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "loss", "val_loss", "grad_norm", "structures_per_s", "seconds")
STATE_KIND = "cgcnn-pretrain-state"


def split_indices(n: int, config: PretrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation rows (after the optional ``max_structures`` cut)."""
    order = np.random.default_rng(config.seed).permutation(n)
    if config.max_structures is not None:
        order = order[: config.max_structures]
    n_val = max(1, round(config.val_fraction * len(order))) if config.val_fraction > 0 else 0
    if len(order) - n_val < 2:
        raise ValueError(f"pretraining needs at least 2 training crystals; {len(order)} crystals leave {len(order) - n_val}.")
    return order[n_val:], order[:n_val]


def _chunks(positions: np.ndarray, batch_size: int) -> list[np.ndarray]:
    # n // batch_size nearly equal chunks: no tiny tail batch (a 1-crystal contrastive batch has no negatives)
    return np.array_split(positions, max(1, len(positions) // batch_size)) if len(positions) else []


def _to(batch: Any, device: torch.device) -> Any:
    return tuple(b.to(device) for b in batch) if isinstance(batch, tuple) else batch.to(device)


def _epoch_generators(seed: int, epoch: int) -> tuple[np.random.Generator, torch.Generator]:
    rng = np.random.default_rng([seed, epoch])
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def _evaluate(task: PretextTask, corpus: Corpus, positions: np.ndarray, config: PretrainConfig, device: torch.device) -> float:
    """Validation loss with fixed noise, views and masks (comparable across epochs)."""
    if not len(positions):
        return float("nan")
    rng, gen = _epoch_generators(config.seed, 0)
    task.eval()
    total = 0.0
    with torch.no_grad():
        for chunk in _chunks(positions, config.batch_size):
            total += float(task(_to(task.make_batch(chunk, corpus, rng), device), gen)) * len(chunk)
    return total / len(positions)


def _find_resume_point(out: Path) -> tuple[int, Checkpoint, Checkpoint] | None:
    """Last epoch with both a training state and an encoder checkpoint, loaded."""
    for epoch in sorted(checkpoint_files(out), reverse=True):
        state_path = out / "state" / checkpoint_name(epoch)
        if state_path.is_file():
            return epoch, load_checkpoint(state_path, kind=STATE_KIND), load_checkpoint(checkpoint_files(out)[epoch], kind=CHECKPOINT_KIND)
    return None


def _metrics_csv(history: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def sync_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """Rewrite ``metrics.csv`` to match the last complete epoch (after a crash or a cancel)."""
    out = Path(out_dir)
    found = _find_resume_point(out)
    history = [row for row in found[1].meta["history"] if row["epoch"] <= found[0]] if found else []
    atomic_write_text(out / "metrics.csv", _metrics_csv(history))
    return history


def read_metrics(folder: str | Path) -> list[dict[str, float]]:
    """Rows of ``metrics.csv`` in a run folder (empty when none yet), as numbers."""
    path = Path(folder) / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: (int(v) if k == "epoch" else float(v or "nan")) for k, v in row.items()} for row in csv.DictReader(fh)]


def pretrain(
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
    """Pretrain a CGCNN encoder with ``config.task`` on ``dataset``; one checkpoint per epoch.

    Args:
        dataset: Crystals to learn from (labels are ignored).
        config: The run; see :class:`~crystalrep.pretrain.PretrainConfig`.
        out_dir: Run folder (``checkpoints/``, ``state/``, ``metrics.csv``).
        resume: Continue from the last complete epoch in ``out_dir`` (fresh start when none).
        encoder_config: Architecture of a fresh encoder (a resumed run keeps its own).
        meta: Extra provenance written into every checkpoint (e.g. the job id).
        progress: Called as ``progress(steps_done, steps_total)`` after each optimiser step.
        on_epoch: Called with each epoch's metrics row after its checkpoint is written.

    Returns:
        Metrics rows of every epoch so far (including those before a resume).

    Raises:
        ValueError: On too few crystals, a changed configuration on resume, or a diverged loss.
    """
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        run = _Run(dataset, config, Path(out_dir), resume=resume, encoder_config=encoder_config, meta=meta)
        for epoch in range(run.start, config.epochs + 1):
            row = run.epoch(epoch, progress)
            if on_epoch is not None:
                on_epoch(row)
        return run.history
    finally:
        torch.set_num_threads(previous_threads)


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in ("device", "threads")}  # these may change on resume


class _Run:
    """One run's model, optimiser, data and history (set up fresh or from the last checkpoint)."""

    def __init__(self, dataset: Dataset, config: PretrainConfig, out: Path, *, resume: bool,
                 encoder_config: CGCNNConfig | None, meta: dict[str, Any] | None) -> None:
        self.config, self.out = config, out
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        train_idx, val_idx = split_indices(len(dataset), config)
        found = _find_resume_point(out) if resume else None
        self.enc_cfg = config_from_dict(found[2].config) if found else (encoder_config or CGCNNConfig())
        self.task = build_task(config, build_cgcnn(self.enc_cfg, seed=config.seed)).to(self.device)
        self.optimizer = torch.optim.AdamW(self.task.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.n_batches = len(_chunks(train_idx, config.batch_size))
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.n_batches * config.epochs)
        self.history: list[dict[str, Any]] = []
        self.start = 1
        if found:
            epoch, state, encoder_ckpt = found
            if _comparable(state.config) != _comparable(config.to_dict()):
                raise ValueError(f"cannot resume {out}: its checkpoints were trained with other options.")
            if encoder_ckpt.meta.get("dataset_fingerprint") != dataset.fingerprint:
                raise ValueError(f"cannot resume {out}: dataset {dataset.name!r} has changed since it was trained.")
            self.task.load_state_dict(state.state_dict["task"], strict=True)
            self.optimizer.load_state_dict(state.state_dict["optimizer"])
            self.scheduler.load_state_dict(state.state_dict["scheduler"])
            torch.set_rng_state(state.state_dict["rng"]["torch"])
            self.history = [row for row in state.meta["history"] if row["epoch"] <= epoch]
            atomic_write_text(out / "metrics.csv", _metrics_csv(self.history))
            self.start = epoch + 1
            log.info("resuming %s at epoch %d", out, self.start)
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
        rng, gen = _epoch_generators(config.seed, epoch)
        loss_sum, norm_sum = 0.0, 0.0
        for b, chunk in enumerate(_chunks(self.train_pos[rng.permutation(len(self.train_pos))], config.batch_size)):
            loss = task(_to(task.make_batch(chunk, self.corpus, rng), self.device), gen)
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
               "val_loss": _evaluate(task, self.corpus, self.val_pos, config, self.device),
               "grad_norm": norm_sum / self.n_batches, "structures_per_s": len(self.train_pos) / train_s,
               "seconds": time.perf_counter() - t0}
        self.history.append(row)
        _save(self.out, epoch, self, row)
        return row


def _code_version() -> dict[str, str]:
    from crystalrep import __version__
    from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

    return {"crystalrep": __version__, "encoder": CGCNNEncoder.version, "torch": str(torch.__version__)}


def _save(out: Path, epoch: int, run: _Run, row: dict[str, Any]) -> None:
    name = checkpoint_name(epoch)
    rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    state = {"task": run.task.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict(), "rng": rng}
    save_checkpoint(out / "state" / name, kind=STATE_KIND, config=run.config.to_dict(), state_dict=state,
                    meta={"epoch": epoch, "history": run.history})
    save_checkpoint(out / "checkpoints" / name, kind=CHECKPOINT_KIND, config=asdict(run.enc_cfg),
                    state_dict=run.task.encoder.state_dict(),
                    meta={**run.provenance, "epoch": epoch, "epochs": epoch, "metrics": row})
    atomic_write_text(out / "metrics.csv", _metrics_csv(run.history))
    for old in (out / "state").glob("epoch-*.pt"):
        if old.name != name:
            old.unlink(missing_ok=True)
    log.info("epoch %d: loss %.4f, val %.4f", epoch, row["loss"], row["val_loss"])
