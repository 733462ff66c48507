"""Readers for tables of crystals: CSV with a ``cif`` column, matbench / pymatgen JSON.

Every column that is not the structure, the id or an index becomes a property, except empty
columns, free text (mean length > 80 characters or 5+ words) and list-like strings; names that clash
with the built-in columns get a ``source_`` prefix (``formula`` → ``source_formula``).
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from crystalrep.datasets import BASE_COLUMNS, DatasetError
from crystalrep.importers.rows import Rejected, Rows

log = logging.getLogger(__name__)

ID_COLUMNS = ("material_id", "id", "jid", "mp_id")
INDEX_COLUMNS = ("", "index")
MAX_TEXT_LENGTH = 80
MAX_WORDS = 5


def property_name(column: str) -> str:
    """The property name of a source column (``source_`` prefix on clashes)."""
    return f"source_{column}" if column in BASE_COLUMNS else column


def id_column(columns: Any) -> str | None:
    """The first of material_id / id / jid / mp_id present (case-insensitive), or None."""
    lowered = {str(c).strip().lower(): str(c) for c in columns}
    return next((lowered[c] for c in ID_COLUMNS if c in lowered), None)


def select_properties(df: pd.DataFrame, *, skip: set[str | None]) -> tuple[dict[str, str], dict[str, str]]:
    """Map kept source columns to property names; return ``(kept, dropped column -> reason)``."""
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for col in df.columns:
        name = str(col)
        if col in skip or name.startswith("Unnamed:") or name.strip().lower() in INDEX_COLUMNS:
            continue
        values = df[col].astype(str).str.strip()
        values = values[values != ""]
        if values.empty:
            dropped[name] = "empty"
        elif values.str.len().mean() > MAX_TEXT_LENGTH or values.str.count(" ").mean() >= MAX_WORDS - 1:
            dropped[name] = "free text"
        elif values.str[:1].isin(["[", "{"]).mean() > 0.9:
            dropped[name] = "list-like values"
        else:
            kept[name] = property_name(name)
    return kept, dropped


def _header(names: list[str]) -> list[str]:
    """pandas-style names: blank → ``Unnamed: i``, repeats → ``name.1``."""
    out: list[str] = []
    for i, raw in enumerate(names):
        name = raw.strip() or f"Unnamed: {i}"
        base, k = name, 0
        while name in out:
            k += 1
            name = f"{base}.{k}"
        out.append(name)
    return out


def read_csv(path: Path) -> tuple[pd.DataFrame, list[int], list[Rejected]]:
    """Read a CSV as strings; returns the table, each kept row's record number, and bad rows."""
    good: list[list[str]] = []
    positions: list[int] = []
    rejected: list[Rejected] = []
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, 1 << 26))  # a CIF cell can exceed the 128 kB default
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            header = _header(next(reader, []))
            for k, record in enumerate(reader):
                if len(record) == len(header):
                    good.append(record)
                    positions.append(k)
                elif record:
                    rejected.append(Rejected(f"row {k}", f"it has {len(record)} fields where the header has {len(header)}."))
    except (OSError, EOFError, csv.Error) as exc:
        raise DatasetError(f"{path.name}: is not a readable CSV file ({exc}).") from exc
    finally:
        csv.field_size_limit(limit)
    if not header:
        raise DatasetError(f"{path.name}: is empty.")
    return pd.DataFrame(good, columns=header, dtype=str), positions, rejected


def csv_rows(path: Path, *, source: str) -> Rows:
    """Rows of a CSV with a ``cif`` column (CDVAE / MP-20 layout)."""
    df, positions, rejected = read_csv(path)
    cif_col = next((c for c in df.columns if str(c).strip().lower() == "cif"), None)
    if cif_col is None:
        cols = ", ".join(map(str, df.columns[:12]))
        raise DatasetError(f"{path.name}: has no 'cif' column (columns: {cols}).")
    id_col = id_column(df.columns)
    kept, dropped = select_properties(df, skip={cif_col, id_col})
    rows = Rows(format="csv", source=source, rejected=rejected, meta={"dropped_columns": dropped})
    rows.descriptions = {new: f"column {old!r} of {path.name}" for old, new in kept.items()}
    rows.properties = {new: [] for new in kept.values()}
    columns = {new: df[old].tolist() for old, new in kept.items()}
    cifs = df[cif_col].tolist()
    ids = df[id_col].astype(str).str.strip().tolist() if id_col else [""] * len(df)
    for k, text in enumerate(cifs):
        ident = ids[k] or str(positions[k])
        label = f"row {positions[k]} (id {ident})" if id_col else f"row {positions[k]}"
        if not str(text).strip():
            rows.rejected.append(Rejected(label, "the cif cell is empty."))
            continue
        rows.add(label, ident, ("cif", text), {c: (v[k] or None) for c, v in columns.items()})
    return rows


def _load_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
        return json.loads(raw.decode("utf-8", errors="replace"))
    except (OSError, EOFError, ValueError) as exc:
        raise DatasetError(f"{path.name}: is not readable JSON ({str(exc).strip()[:200]}).") from exc


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def json_rows(path: Path, *, source: str) -> Rows:
    """Rows of a matbench file (pandas "split" JSON with a ``structure`` column) or of pymatgen dicts."""
    data = _load_json(path)
    stem = path.name.lower().removesuffix(".gz").removesuffix(".json")
    stem = path.name[: len(stem)]
    if isinstance(data, dict) and "columns" in data and "data" in data:
        return _split_rows(data, stem, path.name, source)
    records = data if isinstance(data, list) else [data]
    if not records or not all(isinstance(r, dict) for r in records):
        raise DatasetError(f"{path.name}: holds neither matbench data nor pymatgen structure dicts.")
    rows = Rows(format="json", source=source)
    for k, record in enumerate(records):
        ident = stem if len(records) == 1 else f"{stem}-{k}"
        rows.add(f"structure {k}", ident, ("json", json.dumps(record)), {})
    return rows


def _split_rows(data: dict[str, Any], stem: str, filename: str, source: str) -> Rows:
    columns = [str(c) for c in data["columns"]]
    if "structure" not in columns:
        raise DatasetError(f"{filename}: has no 'structure' column (columns: {', '.join(columns)}).")
    index = data.get("index") or list(range(len(data["data"])))
    rows = Rows(format="matbench-json", source=source)
    targets = [c for c in columns if c != "structure"]
    rows.properties = {property_name(c): [] for c in targets}
    rows.descriptions = {property_name(c): f"column {c!r} of {filename}" for c in targets}
    for k, (idx, record) in enumerate(zip(index, data["data"], strict=False)):
        ident = f"{stem}-{idx}"
        label = f"row {k} (id {ident})"
        if not isinstance(record, list) or len(record) != len(columns):
            rows.rejected.append(Rejected(label, f"the row does not have the {len(columns)} columns of the header."))
            continue
        values = dict(zip(columns, record, strict=True))
        structure = values.pop("structure")
        text = structure if isinstance(structure, str) else json.dumps(structure)
        props = {property_name(c): v for c, v in values.items() if _scalar(v)}
        rows.add(label, ident, ("json", text), props)
    for col, values in list(rows.properties.items()):
        if all(v is None for v in values):  # dict-valued or empty columns carry no property
            del rows.properties[col]
            rows.descriptions.pop(col, None)
    return rows
