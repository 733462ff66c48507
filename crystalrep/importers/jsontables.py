"""Whole-file reader for JSON tables: matbench (pandas "split": columns, index, data) or pymatgen dicts.

The file is read within ``max_decompressed_bytes`` and its nesting checked against
``max_json_depth`` before :mod:`json` parses it; a file of the wrong shape is refused in one
sentence. A matbench file imported by ``crystalrep data import`` is streamed instead
(:mod:`~crystalrep.importers.matbench`), with the same column and row rules (:func:`check_columns`,
:func:`split_row`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crystalrep.datasets import DatasetError
from crystalrep.importers.bounded import TABLE, clip, json_depth, limits, read_bytes, refusal, shown
from crystalrep.importers.rows import Rejected, Rows
from crystalrep.importers.tabular import property_names


def load_json(path: Path) -> Any:
    """Parse a (gzipped) JSON file within the byte and ``max_json_depth`` limits.

    Raises:
        DatasetError: When the file is over a limit or not JSON (one sentence).
    """
    raw = read_bytes(path, TABLE)
    if json_depth(raw) > limits().max_json_depth:
        raise refusal(path.name, "nests JSON deeper than allowed", "max_json_depth")
    try:
        return json.loads(raw.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise DatasetError(clip(f"{shown(path.name)}: is not readable JSON ({str(exc).strip()[:120]}).")) from exc


def scalar(value: Any) -> bool:
    """Whether a JSON value can be a property cell (None, bool, number or text)."""
    return value is None or isinstance(value, bool | int | float | str)


def json_rows(path: Path, *, source: str) -> Rows:
    """Rows of a matbench file (pandas "split" JSON with a ``structure`` column) or of pymatgen dicts."""
    data = load_json(path)
    stem = path.name.lower().removesuffix(".gz").removesuffix(".json")
    stem = path.name[: len(stem)]
    if isinstance(data, dict) and "columns" in data and "data" in data:
        return _split_rows(data, stem, path.name, source)
    records = data if isinstance(data, list) else [data]
    if len(records) > limits().max_rows:
        raise refusal(path.name, f"holds {len(records):,} records", "max_rows")
    if not records or not all(isinstance(r, dict) for r in records):
        raise DatasetError(clip(f"{shown(path.name)}: holds neither matbench data nor pymatgen structure dicts."))
    rows = Rows(format="json", source=source)
    for k, record in enumerate(records):
        ident = stem if len(records) == 1 else f"{stem}-{k}"
        rows.add(f"structure {k}", ident, ("json", json.dumps(record)), {})
    return rows


def _split_shape(data: dict[str, Any], filename: str) -> tuple[list[str], list[Any], list[Any]]:
    """Columns, rows and index of pandas "split" JSON, checked for shape and size."""
    columns, records, index = data["columns"], data["data"], data.get("index")
    check_columns(columns, filename)
    if not isinstance(records, list):
        raise DatasetError(clip(f"{shown(filename)}: is not matbench data (its 'data' is not a list of rows)."))
    if len(records) > limits().max_rows:
        raise refusal(filename, f"has {len(records):,} rows", "max_rows")
    if not isinstance(index, list) or len(index) != len(records) or not all(scalar(i) for i in index):
        index = list(range(len(records)))
    return columns, records, index


def check_columns(columns: Any, filename: str) -> list[str]:
    """The ``columns`` of pandas "split" JSON, checked: names, at most ``max_columns``, a ``structure`` one.

    Raises:
        DatasetError: One sentence naming the file and what is wrong.
    """
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise DatasetError(clip(f"{shown(filename)}: is not matbench data (its 'columns' is not a list of names)."))
    if len(columns) > limits().max_columns:
        raise refusal(filename, f"has {len(columns):,} columns", "max_columns")
    if "structure" not in columns:
        raise DatasetError(clip(f"{shown(filename)}: has no 'structure' column (columns: {', '.join(columns)[:150]})."))
    return columns


def split_row(columns: list[str], record: Any, names: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
    """The structure text and scalar properties of one "split" row, or None when its shape is wrong."""
    if not isinstance(record, list) or len(record) != len(columns):
        return None
    values = dict(zip(columns, record, strict=True))
    structure = values.pop("structure")
    text = structure if isinstance(structure, str) else json.dumps(structure)
    return text, {names[c]: v for c, v in values.items() if scalar(v)}


def _split_rows(data: dict[str, Any], stem: str, filename: str, source: str) -> Rows:
    columns, records, index = _split_shape(data, filename)
    rows = Rows(format="matbench-json", source=source)
    targets = [c for c in dict.fromkeys(columns) if c != "structure"]
    names = property_names(targets)
    rows.properties = {names[c]: [] for c in targets}
    rows.descriptions = {names[c]: f"column {c!r} of {filename}" for c in targets}
    for k, (idx, record) in enumerate(zip(index, records, strict=True)):
        ident = f"{stem}-{idx}"
        label = f"row {k} (id {clip(ident, 60)})"
        row = split_row(columns, record, names)
        if row is None:
            rows.rejected.append(Rejected(label, f"the row does not have the {len(columns)} columns of the header."))
            continue
        rows.add(label, ident, ("json", row[0]), row[1])
    for col, column in list(rows.properties.items()):
        if all(v is None for v in column):  # dict-valued or empty columns carry no property
            del rows.properties[col]
            rows.descriptions.pop(col, None)
    return rows
