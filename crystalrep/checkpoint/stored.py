"""The store's checkpoint folder: save under the checkpoint's id, find by id prefix, list.

Checkpoints live in ``$CRYSTALREP_HOME/checkpoints/<id>.pt``, where the id is the first 12 hex
characters of the file's sha256, so the same weights always have the same name.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crystalrep.checkpoint.files import (
    ID_LENGTH,
    SUFFIX,
    CheckpointError,
    checked_file,
    checkpoint_id,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["checkpoints_dir", "find_checkpoint", "list_checkpoints", "save_to_store"]

logger = logging.getLogger(__name__)


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
