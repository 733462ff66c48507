"""The structure arrays of a sharded dataset, read from disk shard by shard when needed.

Opening (:func:`open_shards`) reads ``meta.json`` and every shard's table columns, each shard's
bytes verified against its sha256, never the structure columns. A :class:`ShardSource` then
reads the structures of one row, a set of rows or everything, touching only the shards that hold
them (the last two stay cached). :class:`~crystalrep.datasets.table.Dataset` uses it to stay lazy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.datasets.parquet import Arrays, decode, decode_table, typed_properties
from crystalrep.datasets.schema import BASE_COLUMNS, DatasetError
from crystalrep.datasets.storage import Replaced, properties_of, read_verified

_CACHED_SHARDS = 2


@dataclass(frozen=True)
class Shard:
    """One shard file as ``meta.json`` records it."""

    file: str
    sha256: str
    rows: int
    sites: int


def concat_arrays(parts: Sequence[Arrays]) -> Arrays:
    """Structure arrays of consecutive blocks joined into one."""
    if not parts:
        return Arrays(np.zeros((0, 3, 3)), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(1, np.int64))
    bases = np.cumsum([0] + [len(p.numbers) for p in parts[:-1]])
    offsets = [parts[0].offsets[:1]] + [p.offsets[1:] + base for p, base in zip(parts, bases, strict=True)]
    return Arrays(lattices=np.concatenate([p.lattices for p in parts]), numbers=np.concatenate([p.numbers for p in parts]),
                  frac_coords=np.concatenate([p.frac_coords for p in parts]), offsets=np.concatenate(offsets).astype(np.int64))


def take(arrays: Arrays, idx: np.ndarray) -> Arrays:
    """The rows ``idx`` of ``arrays``, in that order."""
    counts = np.diff(arrays.offsets)[idx]
    sites = (np.concatenate([np.arange(arrays.offsets[i], arrays.offsets[i + 1]) for i in idx]) if len(idx)
             else np.zeros(0, np.int64))
    return Arrays(arrays.lattices[idx], arrays.numbers[sites], arrays.frac_coords[sites],
                  np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


class ShardSource:
    """Verified, cached access to the shards of one committed version of a dataset folder."""

    def __init__(self, folder: Path, raw_meta: bytes, shards: list[Shard], *, n_elements: int) -> None:
        self.folder, self.shards, self.n_elements = folder, shards, n_elements
        self._raw = raw_meta
        self.starts = np.cumsum([0] + [s.rows for s in shards]).astype(np.int64)
        self._cache: OrderedDict[int, Arrays] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock(), _cache=OrderedDict())

    @property
    def n_sites(self) -> int:
        """Sites in all shards."""
        return sum(s.sites for s in self.shards)

    def bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` rows of each shard, in order."""
        return [(int(a), int(b)) for a, b in zip(self.starts[:-1], self.starts[1:], strict=True)]

    def shard(self, k: int) -> Arrays:
        """Shard ``k``'s structure arrays, read and verified (or from the small cache).

        Raises:
            DatasetError: If the shard changed on disk or does not hold what ``meta.json`` says.
        """
        with self._lock:
            if k in self._cache:
                self._cache.move_to_end(k)
                return self._cache[k]
        shard, name = self.shards[k], self.folder.name
        try:
            blob = read_verified(self.folder, shard.file, shard.sha256, self._raw)
        except Replaced:
            raise DatasetError(f"dataset {name!r} changed on disk after it was opened; load it again.") from None
        arrays = decode(blob, name)[1]
        if len(arrays.lattices) != shard.rows or len(arrays.numbers) != shard.sites:
            raise DatasetError(f"dataset {name!r} is broken: {shard.file} does not hold the rows meta.json records.")
        with self._lock:
            self._cache[k] = arrays
            while len(self._cache) > _CACHED_SHARDS:
                self._cache.popitem(last=False)
        return arrays

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lattice, atomic numbers and fractional coordinates of row ``i`` (reads one shard)."""
        k = int(np.searchsorted(self.starts, i, side="right") - 1)
        arrays, j = self.shard(k), i - int(self.starts[k])
        a, b = int(arrays.offsets[j]), int(arrays.offsets[j + 1])
        return arrays.lattices[j], arrays.numbers[a:b], arrays.frac_coords[a:b]

    def gather(self, idx: np.ndarray) -> Arrays:
        """The rows ``idx`` (valid, non-negative) in that order, reading each needed shard once."""
        which = np.searchsorted(self.starts, idx, side="right") - 1
        order = np.argsort(which, kind="stable")
        parts = [take(self.shard(int(k)), idx[which == k] - self.starts[k]) for k in np.unique(which)]
        return take(concat_arrays(parts), np.argsort(order, kind="stable"))

    def everything(self) -> Arrays:
        """All rows' structure arrays."""
        return concat_arrays([self.shard(k) for k in range(len(self.shards))])


def open_shards(directory: Path, raw: bytes, meta: dict[str, Any]) -> tuple[pd.DataFrame, ShardSource]:
    """The typed table of a sharded folder and a source for its structures.

    Raises:
        Replaced: If a newer version was committed meanwhile (the caller reads again).
        DatasetError: If a shard is missing, tampered with or inconsistent (one sentence).
    """
    name = directory.name
    shards = [Shard(**entry) for entry in meta["shards"]]
    tables = []
    for shard in shards:
        table = decode_table(read_verified(directory, shard.file, shard.sha256, raw), name)
        if len(table) != shard.rows or "nsites" not in table.columns or int(table["nsites"].sum()) != shard.sites:
            raise DatasetError(f"dataset {name!r} is broken: {shard.file} does not hold the rows meta.json records.")
        tables.append(table)
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    missing = [c for c in BASE_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"dataset {name!r} is broken: its shards lack columns {missing}.")
    return typed_properties(table, properties_of(meta)), ShardSource(directory, raw, shards, n_elements=meta["n_elements"])
