"""Write a dataset shard by shard and commit it with one rename, for imports too large to hold.

Usage::

    with ShardWriter("mp", overwrite=False) as writer:
        for blob, rows, sites in shards:       # parquet bytes in the layout of crystalrep.datasets.parquet
            writer.add(blob, rows=rows, sites=sites)
        writer.commit(record)                  # meta.json without "shards": the writer adds them

Each shard is written as ``shard-<sha>.parquet`` (temp file, then rename) beside the current
version; ``commit`` writes ``meta.json`` naming the shards in one rename and removes the old
version's files. Leaving the block without a commit (an error, a kill) leaves the old version
untouched; the unreferenced shards are removed now, or by the next writer of that name.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from crystalrep.datasets.parquet import Arrays, encode
from crystalrep.datasets.registry import check_writable, collect, dataset_dir, writing
from crystalrep.datasets.schema import META, DatasetError, meta_problem
from crystalrep.datasets.table import SHARD_ROWS, Dataset
from crystalrep.store import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)


class ShardWriter:
    """Write the shards of dataset ``name``, then commit them; see the module docstring."""

    def __init__(self, name: str, *, overwrite: bool = False) -> None:
        self.name, self.overwrite = name, overwrite
        self.shards: list[dict[str, Any]] = []
        self._stack = ExitStack()
        self._created = self._committed = False
        self.folder = Path()

    def __enter__(self) -> ShardWriter:
        check_writable(self.name, overwrite=True)
        self.folder = dataset_dir(self.name)
        self._stack.enter_context(writing(self.name))
        try:
            check_writable(self.name, overwrite=self.overwrite)
            self._created = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self._stack.close()
            raise
        return self

    def add(self, blob: bytes, *, rows: int, sites: int) -> str:
        """Write one shard (rows in dataset order); returns its file name."""
        sha = hashlib.sha256(blob).hexdigest()
        file = f"shard-{sha[:16]}.parquet"
        atomic_write_bytes(self.folder / file, blob)
        self.shards.append({"file": file, "sha256": sha, "rows": rows, "sites": sites})
        return file

    def commit(self, record: dict[str, Any]) -> Path:
        """Write ``meta.json`` naming the shards (the commit), then drop the old version's files.

        Raises:
            DatasetError: If ``record`` with the shards is not a valid dataset record.
        """
        full = {**record, "shards": list(self.shards)}
        full.pop("parquet", None)
        full.pop("parquet_sha256", None)
        problem = meta_problem(full)
        if problem is not None:
            raise DatasetError(f"dataset {self.name!r} cannot be committed: {problem}.")
        atomic_write_json(self.folder / META, full)
        self._committed = True
        collect(self.folder, {s["file"] for s in self.shards})
        return self.folder

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if not self._committed:
                if self._created and not (self.folder / META).is_file():
                    shutil.rmtree(self.folder, ignore_errors=True)
                else:  # the committed version stays; only this attempt's shards go
                    live = {s["file"] for s in self.shards} - _named(self.folder)
                    for file in live:
                        (self.folder / file).unlink(missing_ok=True)
        finally:
            self._stack.close()


def save_in_shards(ds: Dataset, *, rows: int = SHARD_ROWS, overwrite: bool = False) -> Path:
    """Save an in-memory dataset under its name as shards of ``rows`` rows (see :class:`ShardWriter`)."""
    with ShardWriter(ds.name, overwrite=overwrite) as writer:
        for start, block in ds.iter_shards() if rows == SHARD_ROWS else _blocks(ds, rows):
            arrays = Arrays(block.lattices, block.numbers, block.frac_coords, block.offsets)
            writer.add(encode(block.table, arrays, text_columns=list(ds.properties)), rows=len(block), sites=len(block.numbers))
            log.debug("shard at row %d written", start)
        return writer.commit(ds.describe())


def _blocks(ds: Dataset, rows: int) -> Iterator[tuple[int, Dataset]]:
    for start in range(0, len(ds), rows):
        yield start, ds.subset(np.arange(start, min(start + rows, len(ds))))


def _named(folder: Path) -> set[str]:
    """Files the committed ``meta.json`` of ``folder`` names (none if it is unreadable)."""
    from crystalrep.datasets.storage import read_meta

    try:
        meta = read_meta(folder)[1]
    except DatasetError:
        return set()
    return {s["file"] for s in meta.get("shards", [])} | ({meta["parquet"]} if "parquet" in meta else set())
