"""Self-supervised pretraining of the ``cgcnn`` encoder: pretext tasks, views, trainer.

This package face is light (no torch): the task names and the frozen run configuration, so the
CLI, the jobs module and the dashboard can validate a request without importing the trainer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["READOUTS", "TASK_NAMES", "PretrainConfig"]

TASK_NAMES: tuple[str, ...] = ("denoise", "contrastive", "masking")
READOUTS: tuple[str, ...] = ("mean", "set2set")
# fields added later, left out of to_dict() at their default: specs, checkpoint configs and the keys
# made from them before these options existed stay byte-identical
_OMITTED_AT_DEFAULT: dict[str, Any] = {"readout": "mean", "workers": 1, "ray_address": None}


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides a pretraining run (saved with every checkpoint).

    Args:
        task: Pretext task, one of :data:`TASK_NAMES`.
        epochs: Number of passes over the training split.
        batch_size: Crystals per optimisation step (contrastive needs at least 2).
        lr: Peak AdamW learning rate, decayed by a cosine schedule.
        weight_decay: AdamW weight decay.
        seed: Seed of the split, the shuffling, the noise and the initial weights.
        sigma: Noise in Å per Cartesian component: the denoising noise, and the thermal
            perturbation of the contrastive views.
        tau: InfoNCE temperature of the contrastive task.
        mask_rate: Fraction of atoms whose element is hidden in the masking task.
        max_structures: Use only the first N crystals (after a seeded shuffle) when set.
        val_fraction: Fraction of crystals held out for the validation loss.
        grad_clip: Maximum global gradient norm.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: torch CPU threads for the run (``None`` keeps torch's default). On a shared
            machine 1 is often far faster: OpenMP threads spin when cores are oversubscribed.
            With several workers: threads per worker.
        readout: Readout of a fresh encoder, one of :data:`READOUTS`; ``"set2set"`` lets the
            contrastive task (which trains through the readout) pretrain a Set2Set readout.
        workers: Data-parallel Ray Train workers (DDP). 1 trains in this process; with N each
            optimisation step splits its ``batch_size`` crystals over the N workers (so the step
            count and the schedule stay those of one worker; contrastive negatives come from a
            worker's own part).
        ray_address: The Ray cluster for several workers (``HOST:PORT``), ``None`` or ``"local"``
            for a Ray started on this machine; like ``device``, it may change on resume.
    """

    task: str = "denoise"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    sigma: float = 0.1
    tau: float = 0.1
    mask_rate: float = 0.15
    max_structures: int | None = None
    val_fraction: float = 0.1
    grad_clip: float = 1.0
    device: str = "auto"
    threads: int | None = None
    readout: str = "mean"
    workers: int = 1
    ray_address: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.task in TASK_NAMES, f"task must be one of {', '.join(TASK_NAMES)}, got {self.task!r}"),
            (_is_int(self.epochs) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs!r}"),
            (_is_int(self.batch_size) and self.batch_size >= 2, f"batch_size must be an integer >= 2, got {self.batch_size!r}"),
            (_is_int(self.seed) and self.seed >= 0, f"seed must be a non-negative integer, got {self.seed!r}"),
            (self.lr > 0 and self.weight_decay >= 0, "lr must be > 0 and weight_decay >= 0"),
            (self.sigma > 0 and self.tau > 0, "sigma and tau must be > 0"),
            (0 < self.mask_rate < 1, f"mask_rate must lie in (0, 1), got {self.mask_rate!r}"),
            (0 <= self.val_fraction < 1, f"val_fraction must lie in [0, 1), got {self.val_fraction!r}"),
            (self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip!r}"),
            (self.threads is None or (_is_int(self.threads) and self.threads >= 1),
             f"threads must be None or an integer >= 1, got {self.threads!r}"),
            (self.max_structures is None or (_is_int(self.max_structures) and self.max_structures >= 2),
             f"max_structures must be None or an integer >= 2, got {self.max_structures!r}"),
            (self.readout in READOUTS, f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}"),
            (_is_int(self.workers) and self.workers >= 1, f"workers must be an integer >= 1, got {self.workers!r}"),
            (not _is_int(self.workers) or self.batch_size >= 2 * self.workers,
             f"batch_size must be at least 2 per worker ({2 * self.workers} for {self.workers} workers)"),
            (self.ray_address is None or (isinstance(self.ray_address, str) and self.ray_address.strip() != ""),
             f"ray_address must be None or a non-empty address, got {self.ray_address!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message + ".")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainConfig:
        """Build from a plain dict; unknown keys raise ``ValueError`` naming the valid ones."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown pretraining option(s) {', '.join(unknown)}; valid: {', '.join(names)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (used in spec.json and checkpoint metadata); later options only when set."""
        return {k: v for k, v in asdict(self).items() if k not in _OMITTED_AT_DEFAULT or v != _OMITTED_AT_DEFAULT[k]}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
