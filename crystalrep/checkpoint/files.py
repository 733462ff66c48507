"""One checkpoint file: ``{format_version, kind, config, state_dict, meta}`` written and read back.

Written with ``torch.save`` (atomically), read with ``weights_only=True``. Only regular files are
read (never ``/proc``, ``/sys`` or ``/dev``, never more than ``MAX_CHECKPOINT_BYTES``), and every
refusal is one sentence: torch's own multi-line explanation of a refused pickle is replaced by
what it means.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crystalrep.checkpoint.plain import tensors_to_cpu, to_plain

__all__ = ["FORMAT_VERSION", "ID_LENGTH", "MAX_CHECKPOINT_BYTES", "SUFFIX", "Checkpoint", "CheckpointError",
           "checked_file", "checkpoint_id", "load_checkpoint", "save_checkpoint"]

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
        "state_dict": tensors_to_cpu(state_dict),
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
