"""Finished shards on disk, so a killed run resumes from the last one it wrote.

Beside the store's artifacts, ``<home>/embedding_shards/<embedding key>/`` holds per finished
shard ``rows-<start>-<stop>.npy`` and then ``rows-<start>-<stop>.json`` (its sha256, shape and
run facts): each written to a temporary file and renamed, the JSON last, so a shard counts only
when both are whole and the array matches its checksum. Shards are named by their rows, so a
resumed run with another shard size simply does not find them. The folder is removed once the
assembled embedding is in the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from typing import Any

import numpy as np

from crystalrep.embed.shards import Shard
from crystalrep.store import Store, atomic_write_bytes, atomic_write_json

__all__ = ["SHARDS_KIND", "ShardFolder"]

log = logging.getLogger(__name__)

SHARDS_KIND = "embedding_shards"


class ShardFolder:
    """The finished shards of one embedding (``key`` is the embedding's store key).

    Args:
        store: The store whose root holds the folder.
        key: The embedding's store key.
    """

    def __init__(self, store: Store, key: str) -> None:
        self.path = store.path(SHARDS_KIND, key)

    def __repr__(self) -> str:
        return f"ShardFolder(path={str(self.path)!r})"

    def save(self, shard: Shard, array: np.ndarray, info: dict[str, Any]) -> None:
        """Write one finished shard: the array, then its checksum record."""
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        data = buf.getvalue()
        atomic_write_bytes(self.path / f"{shard.name}.npy", data)
        atomic_write_json(self.path / f"{shard.name}.json",
                          {"sha256": hashlib.sha256(data).hexdigest(), "shape": list(array.shape), "info": info})

    def load(self, shard: Shard, dim: int) -> tuple[np.ndarray, dict[str, Any]] | None:
        """A finished shard's ``(array, info)``, or ``None`` when absent, partial or damaged."""
        try:
            record = json.loads((self.path / f"{shard.name}.json").read_text())
            data = (self.path / f"{shard.name}.npy").read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("sha256") != hashlib.sha256(data).hexdigest():
            log.warning("shard %s of %s does not match its checksum; recomputing it", shard.name, self.path.name)
            return None
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            log.warning("shard %s of %s cannot be read (%s); recomputing it", shard.name, self.path.name, exc)
            return None
        if array.shape != (len(shard), dim) or array.dtype != np.float32:
            return None
        info = record.get("info")
        return array, info if isinstance(info, dict) else {}

    def finished(self) -> list[str]:
        """Names of the shards with a checksum record (verified only when loaded)."""
        return sorted(p.stem for p in self.path.glob("rows-*.json")) if self.path.is_dir() else []

    def clear(self) -> None:
        """Remove every shard of this embedding."""
        shutil.rmtree(self.path, ignore_errors=True)
