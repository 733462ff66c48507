"""Versioned checkpoints: plain data saved with ``torch.save``, loaded with ``weights_only=True``.

A checkpoint is ``{format_version, kind, config, state_dict, meta}``; its id is the first 12 hex
characters of the file's sha256, so the same weights always have the same name.

* :mod:`~crystalrep.checkpoint.plain`: config and meta as exact JSON types, tensors on the CPU.
* :mod:`~crystalrep.checkpoint.files`: one file written atomically and read back safely (only
  regular files, bounded size, every refusal one sentence).
* :mod:`~crystalrep.checkpoint.stored`: the store's ``checkpoints/`` folder (save, find, list).
"""

from __future__ import annotations

from crystalrep.checkpoint.files import (
    FORMAT_VERSION,
    ID_LENGTH,
    MAX_CHECKPOINT_BYTES,
    SUFFIX,
    Checkpoint,
    CheckpointError,
    checked_file,
    checkpoint_id,
    load_checkpoint,
    save_checkpoint,
)
from crystalrep.checkpoint.plain import to_plain
from crystalrep.checkpoint.stored import (
    checkpoints_dir,
    find_checkpoint,
    list_checkpoints,
    save_to_store,
)

__all__ = [
    "FORMAT_VERSION",
    "ID_LENGTH",
    "MAX_CHECKPOINT_BYTES",
    "SUFFIX",
    "Checkpoint",
    "CheckpointError",
    "checked_file",
    "checkpoint_id",
    "checkpoints_dir",
    "find_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
    "save_to_store",
    "to_plain",
]
