"""Plain data for a checkpoint: what ``torch.load(weights_only=True)`` reads back without complaint.

Config and meta become exact JSON types (:func:`to_plain`); tensors move to the CPU and numpy
scalars become Python numbers (:func:`tensors_to_cpu`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["tensors_to_cpu", "to_plain"]


def to_plain(obj: Any) -> Any:
    """Convert dataclasses, paths, enums, numpy scalars/arrays and tuples to plain JSON types.

    Args:
        obj: Any nesting of dicts, sequences, dataclasses and scalars.

    Returns:
        The same data built only from exact dict, list, str, int, float, bool and None
        (subclasses such as ``torch.__version__`` become their base type).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str.__str__(k) if isinstance(k, str) else str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [to_plain(v) for v in items]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    if isinstance(obj, np.ndarray):
        return to_plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    # Subclasses of the builtins (torch.__version__ is a TorchVersion(str)) are converted too:
    # torch.load(weights_only=True) refuses to unpickle any class it was not told about.
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    raise TypeError(f"Cannot store a {type(obj).__name__} in checkpoint config or meta.")


def tensors_to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor detached, cloned and on the CPU, and numpy scalars as Python numbers."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, tensors_to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, Mapping):
        return {k: tensors_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(tensors_to_cpu(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
