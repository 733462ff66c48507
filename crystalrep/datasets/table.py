"""Dataset: ids, parsed structures as arrays, symmetry labels and property columns with units.

Structures are stored parsed (lattice, atomic numbers, fractional coordinates), so CIF text is
parsed once at import and never again. :meth:`Dataset.load` reads a folder; a folder written in
shards opens lazily: the table at once, the structure arrays shard by shard when first used
(:mod:`crystalrep.datasets.sharded`). :meth:`Dataset.iter_shards` walks any dataset in blocks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.datasets.columns import (
    TableColumns,
    content_of,
    open_table,
    recall_fingerprint,
    remember_fingerprint,
)
from crystalrep.datasets.labels import base_table, property_column
from crystalrep.datasets.parquet import Arrays, encode, fingerprint_of
from crystalrep.datasets.schema import (
    BASE_COLUMNS,
    FORMAT_VERSION,
    META,
    PARQUET,
    RESERVED_COLUMNS,
    DatasetError,
    PropertyInfo,
)
from crystalrep.datasets.sharded import ShardSource, open_shards
from crystalrep.datasets.storage import Replaced, properties_of, provenance, read_meta, read_table
from crystalrep.store import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from pymatgen.core import Structure

SHARD_ROWS = 5_000  # rows per block when an in-memory dataset is walked in shards
_LAZY = ("lattices", "numbers", "frac_coords")
_LOAD_ATTEMPTS = 5


@dataclass(eq=False)
class Dataset:
    """Crystals and their labels; see the module docstring."""

    name: str
    table: pd.DataFrame
    lattices: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray
    offsets: np.ndarray
    properties: dict[str, PropertyInfo] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.table)
        if self.lattices.shape != (n, 3, 3) or self.offsets.shape != (n + 1,):
            raise DatasetError(f"dataset {self.name!r}: table and structure arrays disagree in length.")
        if int(self.offsets[-1]) != len(self.numbers) or self.frac_coords.shape != (len(self.numbers), 3):
            raise DatasetError(f"dataset {self.name!r}: site arrays are inconsistent.")
        missing = [c for c in BASE_COLUMNS if c not in self.table.columns]
        if missing:
            raise DatasetError(f"dataset {self.name!r}: table lacks columns {missing}.")

    @classmethod
    def _lazy(cls, name: str, table: pd.DataFrame, source: ShardSource | TableColumns, meta: dict[str, Any]) -> Dataset:
        """A dataset whose structure arrays stay in ``source`` until used (shards are verified then)."""
        ds = cls.__new__(cls)
        ds.__dict__.update(name=name, table=table, properties=properties_of(meta), meta=provenance(meta),
                           offsets=np.concatenate([[0], np.cumsum(table["nsites"].to_numpy(dtype=np.int64))]).astype(np.int64),
                           fingerprint=meta["fingerprint"])
        ds.__dict__["_shards" if isinstance(source, ShardSource) else "_columns"] = source
        ds.__dict__["_content"] = content_of(meta)
        return ds

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute name

        def __getattr__(self, attr: str) -> Any:
            columns = self.__dict__.get("_columns")  # only reached when an attribute is not set: a lazy array
            if attr in _LAZY and columns is not None:
                self.__dict__[attr] = columns.array(attr)
                if all(a in self.__dict__ for a in _LAZY):
                    self.__dict__.pop("_columns", None)  # the bytes are no longer needed
                return self.__dict__[attr]
            source = self.__dict__.get("_shards")
            if attr in _LAZY and source is not None:
                whole, content, expected = source.everything(), self.__dict__.get("_content"), self.__dict__["fingerprint"]
                if content is None or recall_fingerprint(content) != expected:
                    if fingerprint_of(self.ids, whole) != expected:
                        raise DatasetError(f"dataset {self.name!r} is broken: its shards do not match the fingerprint in meta.json.")
                    if content is not None:
                        remember_fingerprint(content, expected, whole.offsets, self.table["nsites"])
                self.__dict__.update(lattices=whole.lattices, numbers=whole.numbers, frac_coords=whole.frac_coords)
                return self.__dict__[attr]
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def _source(self) -> ShardSource | TableColumns | None:  # where rows are read from; None once arrays are in memory
        if all(a in self.__dict__ for a in _LAZY):
            return None
        return self.__dict__.get("_shards") or self.__dict__.get("_columns")

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, n={len(self)}, properties={list(self.properties)})"

    @property
    def ids(self) -> list[str]:
        """Row ids, as strings."""
        return self.table["id"].astype(str).tolist()

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lattice (3, 3), atomic numbers (k,) and fractional coordinates (k, 3) of row ``i``."""
        if (source := self._source()) is not None:
            return source.row(range(len(self))[i])
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.lattices[i], self.numbers[a:b], self.frac_coords[a:b]

    def structure(self, i: int) -> Structure:
        """Row ``i`` as a pymatgen Structure."""
        from pymatgen.core import Lattice, Structure

        lattice, numbers, frac = self.arrays(i)
        return Structure(Lattice(lattice), numbers.tolist(), frac)

    def structures(self) -> list[Structure]:
        """All rows as pymatgen Structures."""
        return [self.structure(i) for i in range(len(self))]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over ids and canonical structures (rounded lattice, Z, wrapped coordinates)."""
        return fingerprint_of(self.ids, Arrays(self.lattices, self.numbers, self.frac_coords, self.offsets))

    def shard_bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` row ranges of the blocks :meth:`iter_shards` yields, in order."""
        if isinstance(source := self._source(), ShardSource):
            return source.bounds()
        return [(a, min(a + SHARD_ROWS, len(self))) for a in range(0, len(self), SHARD_ROWS)]

    def iter_shards(self) -> Iterator[tuple[int, Dataset]]:
        """Walk the dataset in blocks: yields ``(row_offset, block)``, each block a :class:`Dataset`.

        Row ``j`` of a block is row ``row_offset + j``. A dataset stored in shards yields its
        shards, read (and verified) one at a time, so a caller dropping each block never holds
        the whole dataset; resumable work can key results on :meth:`shard_bounds`.
        """
        for start, stop in self.shard_bounds():
            yield start, self.subset(np.arange(start, stop))

    def subset(self, indices: Sequence[int] | np.ndarray, *, name: str | None = None) -> Dataset:
        """A new in-memory dataset with the given rows, in the given order (reading only their shards)."""
        idx = np.asarray(indices, dtype=np.int64)
        if (source := self._source()) is not None:
            idx = np.where(idx < 0, idx + len(self), idx)
            if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
                raise IndexError(f"row index out of range for a dataset of {len(self)} rows")
            part = source.gather(idx)
        else:
            counts = np.diff(self.offsets)[idx]
            sites = (np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx]) if len(idx)
                     else np.zeros(0, np.int64))
            part = Arrays(self.lattices[idx], self.numbers[sites], self.frac_coords[sites],
                          np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        return Dataset(name=name or self.name, table=self.table.iloc[idx].reset_index(drop=True), lattices=part.lattices,
                       numbers=part.numbers, frac_coords=part.frac_coords, offsets=part.offsets,
                       properties=dict(self.properties), meta=dict(self.meta))

    def property_names(self, kind: str | None = None) -> list[str]:
        """Property columns, optionally only ``numeric`` or ``categorical`` ones."""
        return [p for p, info in self.properties.items() if kind is None or info.kind == kind]

    @classmethod
    def from_structures(cls, name: str, ids: Sequence[Any], structures: Sequence[Structure], *,
                        properties: Mapping[str, Sequence[Any]] | None = None,
                        property_info: Mapping[str, PropertyInfo] | None = None, meta: dict[str, Any] | None = None,
                        progress: Callable[[int, int], None] | None = None) -> Dataset:
        """Build a dataset with formula, chemical system and spglib labels per structure (warnings logged).

        A property's kind (numeric or categorical) follows its values; ``property_info`` gives units and text.
        """
        ids = [str(x) for x in ids]
        if len(ids) != len(structures):
            raise DatasetError("ids and structures differ in length.")
        if len(set(ids)) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
            raise DatasetError(f"dataset {name!r}: id {dup!r} occurs more than once.")
        table = base_table(ids, structures, progress=progress)
        info: dict[str, PropertyInfo] = {}
        columns: dict[str, Any] = {}  # arrays, not Series: a DataFrame of arrays is built ~3x faster
        for col, values in (properties or {}).items():
            if col in RESERVED_COLUMNS:
                raise DatasetError(f"property name {col!r} clashes with a built-in column.")
            if len(values) != len(ids):
                raise DatasetError(f"property {col!r} has {len(values)} values for {len(ids)} rows.")
            columns[col], info[col] = property_column(values, col, (property_info or {}).get(col))
        if columns:  # joined at once: one insert per column is quadratic in the number of columns
            table = pd.concat([table, pd.DataFrame(columns)], axis=1)
        counts = np.array([len(s) for s in structures], dtype=np.int64)
        return cls(name=name, table=table,
                   lattices=np.array([s.lattice.matrix for s in structures], dtype=np.float64).reshape(-1, 3, 3),
                   numbers=np.concatenate([s.atomic_numbers for s in structures]).astype(np.int64) if structures else np.zeros(0, np.int64),
                   frac_coords=np.concatenate([s.frac_coords for s in structures]).astype(np.float64) if structures else np.zeros((0, 3)),
                   offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), properties=info, meta=dict(meta or {}))

    def parquet_bytes(self) -> bytes:
        """The table and the structure arrays as one zstd parquet file (deterministic bytes)."""
        return encode(self.table, Arrays(self.lattices, self.numbers, self.frac_coords, self.offsets))

    def save(self, directory: str | Path) -> Path:
        """Write ``dataset.parquet`` then ``meta.json`` (recording its sha256) atomically into ``directory``.

        The built-in dataset's layout; :func:`~crystalrep.datasets.save_dataset` never rewrites in place.
        """
        directory = Path(directory)
        blob = self.parquet_bytes()
        atomic_write_bytes(directory / PARQUET, blob)
        atomic_write_json(directory / META, self.record(PARQUET, blob))
        return directory

    def record(self, parquet: str, blob: bytes) -> dict[str, Any]:
        """The ``meta.json`` of this dataset stored as the single table ``parquet`` holding ``blob``."""
        sha = hashlib.sha256(blob).hexdigest()
        remember_fingerprint({"parquet_sha256": sha}, self.fingerprint, self.offsets, self.table["nsites"])  # load skips the check
        return {**self.describe(), "parquet": parquet, "parquet_sha256": sha}

    def describe(self) -> dict[str, Any]:
        """Metadata written to ``meta.json``: source, license, units, counts, fingerprint."""
        source = self._source()
        return {**self.meta, "name": self.name, "format_version": FORMAT_VERSION, "n_structures": len(self),
                "n_sites": int(self.offsets[-1]),
                "n_elements": source.n_elements if source is not None else int(len(np.unique(self.numbers))),
                "fingerprint": self.fingerprint, "properties": {k: asdict(v) for k, v in self.properties.items()}}

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        """Read and verify a dataset folder (one table, or shards opened lazily).

        A writer committing a new version meanwhile makes the read start again (a few times).

        Raises:
            DatasetError: If ``meta.json`` is malformed, or a file does not match the sha256,
                fingerprint or counts it records (one sentence naming the dataset).
        """
        directory, attempt = Path(directory), 0
        while True:
            try:
                raw, meta = read_meta(directory)
                if "shards" in meta:
                    table, source = open_shards(directory, raw, meta)
                    return cls._lazy(directory.name, table, source, meta)
                if (lazy := open_table(directory, raw, meta)) is not None:
                    return cls._lazy(directory.name, lazy[0], lazy[1], meta)
                table, arrays, props = read_table(directory, raw, meta)
                ds = cls(name=directory.name, table=table, lattices=arrays.lattices, numbers=arrays.numbers,
                         frac_coords=arrays.frac_coords, offsets=arrays.offsets, properties=props, meta=provenance(meta))
                ds.__dict__["fingerprint"] = meta["fingerprint"]  # read_table checked it
                if (content := content_of(meta)) is not None:
                    remember_fingerprint(content, meta["fingerprint"], arrays.offsets, table["nsites"])
                return ds
            except Replaced as exc:  # a writer committed a new version while we read: read again
                attempt += 1
                if attempt >= _LOAD_ATTEMPTS:
                    raise DatasetError(f"dataset {directory.name!r}: {exc}") from None
                time.sleep(0.02 * attempt)
