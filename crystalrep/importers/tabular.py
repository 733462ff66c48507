"""Reader for tables of crystals: CSV with a ``cif`` column (JSON tables: :mod:`~crystalrep.importers.jsontables`).

Every column that is not the structure, the id or an index becomes a property, except empty
columns, free text (mean length > 80 characters or 5+ words) and list-like strings; names that clash
with the built-in or storage columns get a ``source_`` prefix (``formula`` → ``source_formula``,
``lattice`` → ``source_lattice``), so no column name can make a dataset unreadable.

Files are read through :mod:`crystalrep.importers.bounded`: bytes, rows, columns and header size
are capped, and a file of the wrong shape is refused in one sentence.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from crystalrep.datasets import RESERVED_COLUMNS, DatasetError
from crystalrep.importers.bounded import (
    TABLE,
    clip,
    limits,
    open_bytes,
    refusal,
    shown,
)
from crystalrep.importers.rows import Rejected, Rows

log = logging.getLogger(__name__)

ID_COLUMNS = ("material_id", "id", "jid", "mp_id")
INDEX_COLUMNS = ("", "index")
MAX_TEXT_LENGTH = 80
MAX_WORDS = 5


def property_name(column: str) -> str:
    """The property name of a source column (``source_`` prefix on clashes with reserved columns)."""
    return f"source_{column}" if column in RESERVED_COLUMNS else column


def property_names(columns: Iterable[str]) -> dict[str, str]:
    """Map source columns to distinct property names (``source_`` prefixes, then ``.1`` ... on repeats)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for col in columns:
        name = property_name(col)
        base, k = name, 0
        while name in taken or name in RESERVED_COLUMNS:
            k += 1
            name = f"{base}.{k}"
        taken.add(name)
        out[col] = name
    return out


def id_column(columns: Any) -> str | None:
    """The first of material_id / id / jid / mp_id present (case-insensitive), or None."""
    lowered = {str(c).strip().lower(): str(c) for c in columns}
    return next((lowered[c] for c in ID_COLUMNS if c in lowered), None)


def select_properties(df: pd.DataFrame, *, skip: set[str | None]) -> tuple[dict[str, str], dict[str, str]]:
    """Map kept source columns to property names; return ``(kept, dropped column -> reason)``."""
    kept: list[str] = []
    dropped: dict[str, str] = {}
    # plain Python per cell, columns taken in one transpose: thousands of columns cost no more than their cells
    for col, column in zip(df.columns, df.to_numpy(dtype=object).T, strict=True):
        name = str(col)
        if col in skip or name.startswith("Unnamed:") or name.strip().lower() in INDEX_COLUMNS:
            continue
        values = [text for v in column if v is not None and (text := str(v).strip())]
        if not values:
            dropped[name] = "empty"
        elif (sum(map(len, values)) / len(values) > MAX_TEXT_LENGTH
              or sum(v.count(" ") for v in values) / len(values) >= MAX_WORDS - 1):
            dropped[name] = "free text"
        elif sum(v[0] in "[{" for v in values) / len(values) > 0.9:
            dropped[name] = "list-like values"
        else:
            kept.append(name)
    return property_names(kept), dropped


def _header(names: list[str]) -> list[str]:
    """pandas-style names: blank → ``Unnamed: i``, repeats → ``name.1`` (linear in the names)."""
    out: list[str] = []
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = raw.strip() or f"Unnamed: {i}"
        base, k = name, next_suffix.get(name, 0)
        while name in taken:
            k += 1
            name = f"{base}.{k}"
        next_suffix[base] = k
        taken.add(name)
        out.append(name)
    return out


def read_csv(path: Path) -> tuple[pd.DataFrame, list[int], list[Rejected]]:
    """Read a CSV as strings; returns the table, each kept row's record number, and bad rows.

    Raises:
        DatasetError: When the file is unreadable or over a limit (bytes, header bytes,
            columns, rows), in one sentence naming the file and the limit.
    """
    lim = limits()
    good: list[list[str]] = []
    positions: list[int] = []
    rejected: list[Rejected] = []
    field_limit = csv.field_size_limit()
    csv.field_size_limit(lim.max_file_bytes)  # a cell holds at most one structure file
    try:
        with open_bytes(path, TABLE) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            reader = csv.reader(text)
            names = next(reader, [])
            if sum(len(n) for n in names) + len(names) > lim.max_header_bytes:
                raise refusal(path.name, "has a header line that is too long", "max_header_bytes")
            if len(names) > lim.max_columns:
                raise refusal(path.name, f"has {len(names):,} columns", "max_columns")
            header = _header(names)
            for k, record in enumerate(reader):
                if k >= lim.max_rows:
                    raise refusal(path.name, "has more rows than allowed", "max_rows")
                if len(record) == len(header):
                    good.append(record)
                    positions.append(k)
                elif record:
                    rejected.append(Rejected(f"row {k}", f"it has {len(record)} fields where the header has {len(header)}."))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise refusal(path.name, "has a cell larger than allowed", "max_file_bytes") from None
        raise DatasetError(clip(f"{shown(path.name)}: is not a readable CSV file ({exc}).")) from exc
    finally:
        csv.field_size_limit(field_limit)
    if not header:
        raise DatasetError(clip(f"{shown(path.name)}: is empty."))
    return pd.DataFrame(good, columns=header, dtype=str), positions, rejected


def csv_rows(path: Path, *, source: str) -> Rows:
    """Rows of a CSV with a ``cif`` column (CDVAE / MP-20 layout)."""
    df, positions, rejected = read_csv(path)
    cif_col = next((c for c in df.columns if str(c).strip().lower() == "cif"), None)
    if cif_col is None:
        cols = ", ".join(map(str, df.columns[:12]))
        raise DatasetError(clip(f"{shown(path.name)}: has no 'cif' column (columns: {cols[:150]})."))
    id_col = id_column(df.columns)
    kept, dropped = select_properties(df, skip={cif_col, id_col})
    rows = Rows(format="csv", source=source, rejected=rejected, meta={"dropped_columns": dropped})
    rows.descriptions = {new: f"column {old!r} of {path.name}" for old, new in kept.items()}
    rows.properties = {new: [] for new in kept.values()}
    by_name = dict(zip(df.columns, df.to_numpy(dtype=object).T.tolist(), strict=True))
    columns = {new: by_name[old] for old, new in kept.items()}
    cifs = df[cif_col].tolist()
    ids = df[id_col].astype(str).str.strip().tolist() if id_col else [""] * len(df)
    for k, text in enumerate(cifs):
        ident = ids[k] or str(positions[k])
        label = f"row {positions[k]} (id {clip(ident, 60)})" if id_col else f"row {positions[k]}"
        if not str(text).strip():
            rows.rejected.append(Rejected(label, "the cif cell is empty."))
            continue
        rows.add(label, ident, ("cif", text), {c: (v[k] or None) for c, v in columns.items()})
    return rows
