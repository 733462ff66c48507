"""A dataset table and its structure arrays as parquet bytes, and back.

One file holds the table columns followed by the three structure columns (``lattice`` as 9
floats, ``numbers`` and ``frac`` as lists per row), zstd-compressed, in row groups of
:data:`ROW_GROUP_ROWS` rows, without pandas metadata, so equal content gives equal bytes. The same
layout serves a whole dataset and one shard of it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.datasets.schema import STORAGE_COLUMNS, DatasetError, PropertyInfo

ROW_GROUP_ROWS = 20_000  # a few rows' structures are read by decoding their row group, not the whole column


@dataclass(frozen=True)
class Arrays:
    """Structure arrays of consecutive rows: ``numbers[offsets[i]:offsets[i + 1]]`` are row i's."""

    lattices: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray
    offsets: np.ndarray


def fingerprint_bytes(ids: Sequence[str], arrays: Arrays) -> Iterator[bytes]:
    """The bytes a dataset fingerprint hashes, row by row (id, rounded lattice, Z, wrapped coordinates)."""
    lattices = np.round(arrays.lattices, 6).astype("<f8")
    numbers = arrays.numbers.astype("<i8")
    frac = (np.round(np.mod(arrays.frac_coords, 1.0), 6) % 1.0).astype("<f8")
    for i, ident in enumerate(ids):  # rounding in bulk, hashing per row: same bytes as row by row
        a, b = int(arrays.offsets[i]), int(arrays.offsets[i + 1])
        yield ident.encode() + b"\0"
        yield lattices[i].tobytes()
        yield numbers[a:b].tobytes()
        yield frac[a:b].tobytes()


def fingerprint_of(ids: Sequence[str], arrays: Arrays) -> str:
    """sha256 over :func:`fingerprint_bytes`: the dataset fingerprint."""
    digest = hashlib.sha256()
    for part in fingerprint_bytes(ids, arrays):
        digest.update(part)
    return digest.hexdigest()


def encode(table: pd.DataFrame, arrays: Arrays, *, text_columns: Sequence[str] = ()) -> bytes:
    """Parquet bytes of ``table`` plus the structure columns; ``text_columns`` are stored as strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tab = pa.Table.from_pandas(table.drop(columns=list(text_columns)), preserve_index=False)
    for col in text_columns:  # raw values of an import chunk: strings or nulls, the kind decided later
        values = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in table[col].tolist()]
        tab = tab.append_column(col, pa.array(values, type=pa.string()))
    if text_columns:
        tab = tab.select(list(table.columns))
    offsets = arrays.offsets
    tab = tab.append_column("lattice", pa.FixedSizeListArray.from_arrays(pa.array(arrays.lattices.reshape(-1)), 9))
    tab = tab.append_column("numbers", pa.ListArray.from_arrays(pa.array(offsets), pa.array(arrays.numbers)))
    tab = tab.append_column("frac", pa.ListArray.from_arrays(pa.array(offsets * 3), pa.array(arrays.frac_coords.reshape(-1))))
    tab = tab.replace_schema_metadata(None)
    buf = io.BytesIO()
    pq.write_table(tab, buf, compression="zstd", write_statistics=False, row_group_size=ROW_GROUP_ROWS)
    return buf.getvalue()


def _storage_columns(tab: Any, name: str) -> tuple[list[Any], list[int]]:
    """The three structure columns and the positions of the table columns.

    Datasets imported before property names were checked may hold a property called
    ``lattice`` beside the structure column; the structure columns are always the last three.
    """
    names = tab.schema.names
    if len(names) < 3 or names[-3:] != list(STORAGE_COLUMNS):
        raise DatasetError(f"dataset {name!r} cannot be read (its parquet file lacks the structure columns).")
    n = len(names)
    return [tab.column(n - 3 + k).combine_chunks() for k in range(3)], list(range(n - 3))


def _damaged(name: str, exc: Exception) -> DatasetError:
    return DatasetError(f"dataset {name!r} cannot be read (its table is damaged: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}).")


def decode_table(blob: bytes, name: str) -> pd.DataFrame:
    """The table columns of parquet bytes, without decoding the structure columns.

    Raises:
        DatasetError: If the bytes are not such a table (one sentence naming the dataset).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(pa.BufferReader(blob))
        names = file.schema_arrow.names
        if names[-3:] != list(STORAGE_COLUMNS):
            raise DatasetError(f"dataset {name!r} cannot be read (its parquet file lacks the structure columns).")
        return file.read(columns=names[:-3]).to_pandas()
    except (pa.ArrowException, OSError, TypeError, IndexError) as exc:
        raise _damaged(name, exc) from exc
    except ValueError as exc:
        if isinstance(exc, DatasetError):
            raise
        raise _damaged(name, exc) from exc


def decode(blob: bytes, name: str) -> tuple[pd.DataFrame, Arrays]:
    """The table and the structure arrays of parquet bytes.

    Raises:
        DatasetError: If the bytes are not such a table (one sentence naming the dataset).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        tab = pq.ParquetFile(pa.BufferReader(blob)).read()  # read_table refuses duplicate column names
        (lat, nums, frac), keep = _storage_columns(tab, name)
        table = tab.select(keep).to_pandas()
        arrays = Arrays(
            lattices=lat.flatten().to_numpy().reshape(-1, 3, 3).astype(np.float64),
            numbers=nums.flatten().to_numpy().astype(np.int64),
            frac_coords=frac.flatten().to_numpy().reshape(-1, 3).astype(np.float64),
            offsets=nums.offsets.to_numpy().astype(np.int64) - int(nums.offsets[0].as_py()),
        )
    except (pa.ArrowException, OSError, TypeError, IndexError) as exc:
        raise _damaged(name, exc) from exc
    except ValueError as exc:
        if isinstance(exc, DatasetError):
            raise
        raise _damaged(name, exc) from exc
    return table, arrays


def typed_properties(table: pd.DataFrame, properties: dict[str, PropertyInfo]) -> pd.DataFrame:
    """Give the raw (text) property columns of shards their kind; absent columns become missing values."""
    columns: dict[str, Any] = {}
    for col in [*table.columns, *(p for p in properties if p not in table.columns)]:
        info = properties.get(col)
        raw = table[col].to_numpy(dtype=object) if col in table.columns else np.full(len(table), None, dtype=object)
        if info is not None and info.kind == "numeric":
            columns[col] = np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=float)
        else:
            columns[col] = table[col].to_numpy() if col in table.columns else raw
    return pd.DataFrame(columns, index=range(len(table)))


def renamed_clashes(table: pd.DataFrame, props: dict[str, PropertyInfo]) -> tuple[pd.DataFrame, dict[str, PropertyInfo]]:
    """Give old properties that took a reserved name (``lattice``) a ``source_`` name."""
    clashes = [c for c in props if c in STORAGE_COLUMNS and c in table.columns]
    if not clashes:
        return table, props
    columns = list(table.columns)
    mapping = {}
    for old in clashes:
        new = f"source_{old}"
        while new in columns or new in props:
            new = f"source_{new}"
        mapping[old] = new
        columns[columns.index(old)] = new
    table.columns = columns
    props = {mapping.get(k, k): (PropertyInfo(mapping[k], info.unit, info.description, info.kind) if k in mapping else info)
             for k, info in props.items()}
    return table, props
