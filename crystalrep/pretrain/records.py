"""A pretraining run folder on disk: per-epoch checkpoints, the last training state, metrics.

``checkpoints/epoch-NNN.pt`` holds the encoder alone (``kind="cgcnn"``, so every epoch is a usable
encoder), ``state/epoch-NNN.pt`` the task heads, optimizer, scheduler and RNG (last epoch only),
``metrics.csv`` one row per epoch. Writes per epoch go state → checkpoint → metrics, each atomic,
so a run killed at any instant resumes from a consistent last epoch.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from crystalrep.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from crystalrep.encoders.cgcnn_encoder import CHECKPOINT_KIND
from crystalrep.runs import checkpoint_files, checkpoint_name
from crystalrep.store import atomic_write_text

__all__ = ["METRIC_COLUMNS", "STATE_KIND", "find_resume_point", "metrics_csv", "read_metrics", "sync_metrics",
           "write_epoch"]

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "loss", "val_loss", "grad_norm", "structures_per_s", "seconds")
STATE_KIND = "cgcnn-pretrain-state"


def find_resume_point(out: Path) -> tuple[int, Checkpoint, Checkpoint] | None:
    """Last epoch with both a training state and an encoder checkpoint, loaded."""
    for epoch in sorted(checkpoint_files(out), reverse=True):
        state_path = out / "state" / checkpoint_name(epoch)
        if state_path.is_file():
            return epoch, load_checkpoint(state_path, kind=STATE_KIND), load_checkpoint(checkpoint_files(out)[epoch], kind=CHECKPOINT_KIND)
    return None


def metrics_csv(history: list[dict[str, Any]]) -> str:
    """``metrics.csv`` text of the given epoch rows."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def sync_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """Rewrite ``metrics.csv`` to match the last complete epoch (after a crash or a cancel)."""
    out = Path(out_dir)
    found = find_resume_point(out)
    history = [row for row in found[1].meta["history"] if row["epoch"] <= found[0]] if found else []
    atomic_write_text(out / "metrics.csv", metrics_csv(history))
    return history


def read_metrics(folder: str | Path) -> list[dict[str, float]]:
    """Rows of ``metrics.csv`` in a run folder (empty when none yet), as numbers."""
    path = Path(folder) / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: (int(v) if k == "epoch" else float(v or "nan")) for k, v in row.items()} for row in csv.DictReader(fh)]



def write_epoch(out: Path, epoch: int, files: dict[str, Any]) -> None:
    """Write one epoch: training state, then the encoder checkpoint, then metrics (each atomic)."""
    name = checkpoint_name(epoch)
    save_checkpoint(out / "state" / name, kind=STATE_KIND, config=files["config"], state_dict=files["state"],
                    meta={"epoch": epoch, "history": files["history"]})
    save_checkpoint(out / "checkpoints" / name, kind=CHECKPOINT_KIND, config=files["encoder_config"],
                    state_dict=files["encoder"], meta=files["meta"])
    atomic_write_text(out / "metrics.csv", metrics_csv(files["history"]))
    for old in (out / "state").glob("epoch-*.pt"):
        if old.name != name:
            old.unlink(missing_ok=True)
    row = files["meta"]["metrics"]
    log.info("epoch %d: loss %.4f, val %.4f", epoch, row["loss"], row["val_loss"])
