"""The pretraining loop: AdamW, cosine schedule, clipping, validation, a checkpoint per epoch.

The run's pieces are in :mod:`crystalrep.pretrain.loop`, the run folder's layout and its atomic
per-epoch writes in :mod:`crystalrep.pretrain.records`; with ``workers > 1`` the same run trains
data-parallel on Ray Train (:mod:`crystalrep.pretrain.distributed`) and writes the same folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from crystalrep.datasets import Dataset
from crystalrep.encoders.cgcnn import CGCNNConfig
from crystalrep.pretrain import PretrainConfig
from crystalrep.pretrain.loop import Run, epoch_files, split_indices
from crystalrep.pretrain.records import (
    METRIC_COLUMNS,
    STATE_KIND,
    find_resume_point,
    metrics_csv,
    read_metrics,
    sync_metrics,
    write_epoch,
)
from crystalrep.store import atomic_write_text

__all__ = ["METRIC_COLUMNS", "STATE_KIND", "pretrain", "read_metrics", "split_indices", "sync_metrics"]


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
    if config.workers > 1:
        from crystalrep.pretrain.distributed import pretrain_distributed

        return pretrain_distributed(dataset, config, out_dir=out_dir, resume=resume, encoder_config=encoder_config,
                                    meta=meta, progress=progress, on_epoch=on_epoch)
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        out = Path(out_dir)
        found = find_resume_point(out) if resume else None
        run = Run(dataset, config, found=found, encoder_config=encoder_config, meta=meta, where=out)
        if found:
            atomic_write_text(out / "metrics.csv", metrics_csv(run.history))
        for epoch in range(run.start, config.epochs + 1):
            row = run.epoch(epoch, progress)
            write_epoch(out, epoch, epoch_files(run, epoch, row))
            if on_epoch is not None:
                on_epoch(row)
        return run.history
    finally:
        torch.set_num_threads(previous_threads)
