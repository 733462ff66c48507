"""Device selection, the cores this process may use, and global seeding for every torch-using stage."""

from __future__ import annotations

import logging
import os
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_CHOICES", "cores", "resolve_device", "seed_everything"]

logger = logging.getLogger(__name__)

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def cores() -> int:
    """CPU cores this process may run on (its affinity where the OS says, else the machine's count)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def resolve_device(device: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device``.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or an
            indexed CUDA device such as ``"cuda:1"``.

    Returns:
        The resolved device.

    Raises:
        ValueError: If the name is unknown or CUDA is requested but not available.
    """
    import torch

    name = str(device).strip().lower()
    base = name.split(":", 1)[0]
    if base not in DEVICE_CHOICES or (base != "cuda" and ":" in name):
        raise ValueError(f"Unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    if base == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {device!r} was requested but CUDA is not available here.")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Args:
        seed: Non-negative integer seed; 0 is a valid seed.

    Raises:
        ValueError: If ``seed`` is not a non-negative integer.
    """
    import torch

    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"Seed must be a non-negative integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    logger.debug("Seeded python, numpy and torch with %d", seed)
