"""Reading a dataset folder: ``meta.json`` first, then the bytes it names, each verified.

A folder holds one table (``dataset.parquet`` of the built-in dataset, ``dataset-<sha>.parquet``
of a named one) or shards (``shard-<sha>.parquet``, written by a streaming import). Every file is
checked against the sha256 that ``meta.json`` records; a whole table also against the counts and
the fingerprint. A reader sees one version whole: when a writer commits a new version while it
reads, the read starts again (a few times) from the new ``meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from crystalrep.datasets.parquet import Arrays, decode, fingerprint_of, renamed_clashes
from crystalrep.datasets.schema import (
    MAX_META_BYTES,
    META,
    PARQUET,
    RECORD_KEYS,
    DatasetError,
    PropertyInfo,
    meta_problem,
)


class Replaced(Exception):
    """A file a ``meta.json`` named was gone or different when read (a concurrent writer)."""


def read_meta(directory: Path) -> tuple[bytes, dict[str, Any]]:
    """The raw bytes and the validated content of a dataset's ``meta.json``.

    Raises:
        DatasetError: If it is unreadable, too large or not a dataset record (one sentence).
    """
    name = directory.name
    try:
        if (directory / META).stat().st_size > MAX_META_BYTES:
            raise DatasetError(f"dataset {name!r} is broken: its meta.json is larger than {MAX_META_BYTES >> 20} MB.")
        raw = (directory / META).read_bytes()
    except OSError as exc:
        raise DatasetError(f"dataset {name!r} cannot be read ({exc.strerror or exc}).") from exc
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"dataset {name!r} cannot be read (meta.json is not valid JSON).") from exc
    problem = meta_problem(meta)
    if problem is not None:
        raise DatasetError(f"dataset {name!r} is broken: {problem}.")
    return raw, meta


def changed(directory: Path, raw: bytes) -> bool:
    """Whether ``meta.json`` now differs from ``raw`` (read again now and after a moment)."""
    for pause in (0.0, 0.02):
        time.sleep(pause)
        try:
            if (directory / META).read_bytes() != raw:
                return True
        except OSError:
            return True
    return False


def read_verified(directory: Path, file: str, sha: str | None, raw: bytes) -> bytes:
    """The bytes of ``file``, checked against ``sha`` (when recorded) from the ``meta.json`` ``raw``.

    Raises:
        Replaced: If the file is gone or different because a newer version was committed.
        DatasetError: If it is missing or different otherwise (one sentence).
    """
    name = directory.name
    try:
        blob = (directory / file).read_bytes()
    except FileNotFoundError:
        if (directory / META).is_file() and changed(directory, raw):
            raise Replaced("it was replaced while being read; try again.") from None
        raise DatasetError(f"dataset {name!r} is broken: its table {file} is missing.") from None
    except OSError as exc:
        raise DatasetError(f"dataset {name!r} cannot be read ({exc.strerror or exc}).") from exc
    if sha is not None and hashlib.sha256(blob).hexdigest() != sha:
        if changed(directory, raw):
            raise Replaced("it was replaced while being read; try again.")
        raise DatasetError(f"dataset {name!r} is broken: {file} does not match the sha256 in meta.json.")
    return blob


def properties_of(meta: dict[str, Any]) -> dict[str, PropertyInfo]:
    """The property infos a ``meta.json`` records."""
    return {k: PropertyInfo(**{**v, "name": k}) for k, v in meta.get("properties", {}).items()}


def provenance(meta: dict[str, Any]) -> dict[str, Any]:
    """What a ``meta.json`` holds beyond the record itself (source, license, rejected rows...)."""
    return {k: v for k, v in meta.items() if k not in RECORD_KEYS}


def read_table(directory: Path, raw: bytes, meta: dict[str, Any]) -> tuple[pd.DataFrame, Arrays, dict[str, PropertyInfo]]:
    """The table, structure arrays and property infos of a one-table folder, checked against ``meta``.

    Raises:
        Replaced: If a newer version was committed meanwhile (the caller reads again).
        DatasetError: If the table does not match the sha256, counts or fingerprint recorded.
    """
    name = directory.name
    parquet = meta.get("parquet", PARQUET)
    table, arrays = decode(read_verified(directory, parquet, meta.get("parquet_sha256"), raw), name)
    table, props = renamed_clashes(table, properties_of(meta))
    if (len(table) != meta["n_structures"] or len(arrays.lattices) != len(table) or len(arrays.numbers) != meta["n_sites"]
            or fingerprint_of(table["id"].astype(str).tolist(), arrays) != meta["fingerprint"]):
        raise DatasetError(f"dataset {name!r} is broken: its table does not match the counts and fingerprint in meta.json.")
    missing = [p for p in props if p not in table.columns]
    if missing:
        raise DatasetError(f"dataset {name!r} is broken: meta.json lists properties without columns ({', '.join(missing[:5])}).")
    return table, arrays, props
