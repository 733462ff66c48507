"""Versioned checkpoints: plain data saved with ``torch.save``, loaded with ``weights_only=True``.

A checkpoint is ``{format_version, kind, config, state_dict, meta}``; its id is the first 12 hex
characters of the file's sha256, so the same weights always have the same name.

Only regular files are read (never ``/proc``, ``/sys`` or ``/dev``, never more than
``MAX_CHECKPOINT_BYTES``), and every refusal is one sentence: torch's own multi-line
explanation of a refused pickle is replaced by what it means.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import logging
import pickle
import stat
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_id",
    "checkpoints_dir",
    "find_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
    "save_to_store",
    "to_plain",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
ID_LENGTH = 12
SUFFIX = ".pt"
_KEYS = ("format_version", "kind", "config", "state_dict", "meta")
MAX_CHECKPOINT_BYTES = 4 * 1024**3
_SYSTEM_ROOTS = ("proc", "sys", "dev")


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupted, of another kind or of another format version."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        kind: What the weights belong to, e.g. ``"cgcnn"``.
        config: Plain-JSON constructor arguments of the model.
        state_dict: Tensors (possibly nested, e.g. model + optimizer state).
        meta: Plain-JSON provenance (task, epochs, dataset fingerprint, seed, ...).
        sha256: Hex sha256 of the file.
        path: Where it was read from.
        format_version: Format of the file.
    """

    kind: str
    config: dict[str, Any]
    state_dict: Any
    meta: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    path: Path | None = None
    format_version: int = FORMAT_VERSION

    @property
    def id(self) -> str:
        """First 12 hex characters of the file's sha256."""
        return self.sha256[:ID_LENGTH]


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


def _tensors_to_cpu(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _tensors_to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, Mapping):
        return {k: _tensors_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_tensors_to_cpu(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(
    path: str | Path,
    *,
    kind: str,
    config: Any,
    state_dict: Any,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """Write a checkpoint atomically (temp file + rename).

    Args:
        path: Destination file.
        kind: What the weights belong to, e.g. ``"cgcnn"``; checked again on load.
        config: Model configuration (dataclass or mapping), stored as plain JSON types.
        state_dict: ``model.state_dict()`` or a nesting of them; tensors are moved to CPU.
        meta: Provenance, stored as plain JSON types.

    Returns:
        The checkpoint id (first 12 hex characters of the file's sha256).
    """
    import torch

    from crystalrep.store import atomic_write_bytes

    payload = {
        "format_version": FORMAT_VERSION,
        "kind": str(kind),
        "config": to_plain(config),
        "state_dict": _tensors_to_cpu(state_dict),
        "meta": to_plain(dict(meta or {})),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(Path(path), data)
    return hashlib.sha256(data).hexdigest()[:ID_LENGTH]


def load_checkpoint(
    path: str | Path, *, kind: str | None = None, map_location: str = "cpu"
) -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its format and kind.

    Args:
        path: Checkpoint file.
        kind: Expected kind; ``None`` accepts any.
        map_location: Where tensors are loaded.

    Returns:
        The checkpoint.

    Raises:
        CheckpointError: If the file is missing, unreadable, of another format version or kind.
    """
    import torch

    path = Path(path)
    data = _read(path)
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused a class: nothing was run
        raise CheckpointError(f"Checkpoint {_shown(path)} is corrupted or not a checkpoint (it holds Python "
                              "objects, which are refused without running them).") from exc
    # torch.load raises many unrelated types on damaged input (zip, pickle, EOF, Runtime).
    except Exception as exc:  # noqa: BLE001 - third-party loader boundary, reported as one sentence
        raise CheckpointError(f"Checkpoint {_shown(path)} is corrupted or not a checkpoint ({_first_line(exc)}).") from exc
    if not isinstance(payload, dict) or not set(_KEYS) <= set(payload):
        raise CheckpointError(f"Checkpoint {path} lacks the keys {', '.join(_KEYS)}.")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {path} has format version {payload['format_version']!r}; "
            f"this crystalrep reads version {FORMAT_VERSION}."
        )
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"Checkpoint {path} holds a {payload['kind']!r}, not a {kind!r}.")
    return Checkpoint(
        kind=payload["kind"],
        config=dict(payload["config"]),
        state_dict=payload["state_dict"],
        meta=dict(payload["meta"]),
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
        format_version=payload["format_version"],
    )


def _shown(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else "…" + text[-119:]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:120]


def checked_file(path: str | Path) -> Path:
    """``path`` resolved, if it is a regular file of a sensible checkpoint size outside ``/proc``, ``/sys``, ``/dev``.

    Raises:
        CheckpointError: Otherwise (one sentence).
    """
    path = Path(path).expanduser()
    try:
        resolved = path.resolve(strict=True)
        info = resolved.stat()
    except (OSError, RuntimeError):
        raise CheckpointError(f"Checkpoint file {_shown(path)} does not exist.") from None
    if not stat.S_ISREG(info.st_mode) or resolved.parts[1:2] in [(root,) for root in _SYSTEM_ROOTS]:
        raise CheckpointError(f"{_shown(path)} is not a regular file, so it is not read as a checkpoint.")
    if info.st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"Checkpoint {_shown(path)} is larger than {MAX_CHECKPOINT_BYTES >> 30} GB; refused.")
    return resolved


def _read(path: Path) -> bytes:
    resolved = checked_file(path)
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"Checkpoint {_shown(path)} cannot be read ({exc.strerror or type(exc).__name__}).") from exc
    if not data:
        raise CheckpointError(f"Checkpoint {_shown(path)} is corrupted or not a checkpoint (the file is empty).")
    return data


def checkpoint_id(path: str | Path) -> str:
    """Return the id (first 12 hex of sha256) of a checkpoint file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:ID_LENGTH]


def checkpoints_dir() -> Path:
    """The store's checkpoint folder, ``$CRYSTALREP_HOME/checkpoints`` (not created here)."""
    from crystalrep.store import crystalrep_home

    return crystalrep_home() / "checkpoints"


def save_to_store(
    *, kind: str, config: Any, state_dict: Any, meta: Mapping[str, Any] | None = None
) -> Path:
    """Save a checkpoint into the store as ``checkpoints/<id>.pt`` and return its path."""
    folder = checkpoints_dir()
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".staging-{uuid.uuid4().hex}{SUFFIX}"
    ckpt_id = save_checkpoint(staging, kind=kind, config=config, state_dict=state_dict, meta=meta)
    final = folder / f"{ckpt_id}{SUFFIX}"
    staging.replace(final)
    logger.info("Saved %s checkpoint %s", kind, final)
    return final


def find_checkpoint(ref: str | Path) -> Path:
    """Resolve a checkpoint path, id or unique id prefix (at least 6 characters).

    Args:
        ref: A file path, or an id looked up under :func:`checkpoints_dir` (recursively).

    Returns:
        The checkpoint file.

    Raises:
        CheckpointError: If nothing, or more than one checkpoint, matches.
    """
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        checked_file(candidate)
        return candidate
    ref = str(ref).strip().lower()
    folder = checkpoints_dir()
    if len(ref) < 6 or not all(c in "0123456789abcdef" for c in ref):
        raise CheckpointError(f"{ref!r} is neither a checkpoint file nor a checkpoint id.")
    exact = folder / f"{ref[:ID_LENGTH]}{SUFFIX}"
    if len(ref) >= ID_LENGTH and exact.is_file():
        return exact
    files = _stored_files(folder)
    matches = {checkpoint_id(p): p for p in files}
    hits = [p for cid, p in matches.items() if cid.startswith(ref)]
    if len(hits) != 1:
        found = "no" if not hits else "several"
        raise CheckpointError(f"Found {found} checkpoints with id {ref!r} under {folder}.")
    return hits[0]


def list_checkpoints(*, kind: str | None = None) -> list[dict[str, Any]]:
    """Describe every readable checkpoint under :func:`checkpoints_dir` (newest first).

    Args:
        kind: Only list checkpoints of this kind.

    Returns:
        Dicts with ``id``, ``path``, ``kind``, ``config`` and ``meta``.
    """
    folder = checkpoints_dir()
    if not folder.is_dir():
        return []
    rows = []
    files = sorted(_stored_files(folder), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files:
        try:
            ckpt = load_checkpoint(path, kind=kind)
        except CheckpointError as exc:
            logger.debug("Skipping %s: %s", path, exc)
            continue
        rows.append(
            {"id": ckpt.id, "path": str(path), "kind": ckpt.kind, "config": ckpt.config,
             "meta": ckpt.meta}
        )
    return rows


def _stored_files(folder: Path) -> list[Path]:
    """Checkpoint files under the store folder: regular, not hidden, resolving inside it."""
    if not folder.is_dir():
        return []
    root = folder.resolve()
    out = []
    for path in sorted(folder.rglob(f"*{SUFFIX}")):
        if path.name.startswith("."):
            continue
        try:
            checked = checked_file(path)
        except CheckpointError:
            continue
        if checked.is_relative_to(root):
            out.append(path)
    return out
