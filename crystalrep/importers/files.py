"""Readers for structure files: a folder of files (+ metadata CSV), one CIF or POSCAR file.

In a folder every CIF / POSCAR / JSON / extxyz file is one row (its first structure); which files
those are, the format table says (:func:`crystalrep.structures.formats.structure_format`). A
metadata CSV (``metadata.csv``, or the only CSV) is joined by a file-name column when one
exists, else by matching its id column to a part of the file stem (``mp_mp-1234.cif`` ↔
``mp-1234``). Files without metadata still import, with empty properties. A file that cannot be
read, or a metadata CSV that cannot, is reported as a rejected row; it never aborts the folder.

Every read is bounded (:mod:`crystalrep.importers.bounded`); an extxyz file in a folder
contributes its first frame, located by :func:`crystalrep.importers.extxyz.first_frame`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from crystalrep.datasets import DatasetError
from crystalrep.importers.bounded import STRUCTURE, clip, limits, read_text, refusal, shown
from crystalrep.importers.extxyz import default_max_atoms, first_frame
from crystalrep.importers.rows import Rejected, Rows
from crystalrep.importers.tabular import id_column, read_csv, select_properties
from crystalrep.structures.formats import strip_suffix, structure_format

log = logging.getLogger(__name__)

_BLOCK_START = re.compile(r"(?im)^[ \t]*(?=data_)")


def _metadata_lookup(root: Path, rows: Rows) -> tuple[dict[str, dict[str, Any]], str | None, str]:
    """Map file keys to metadata records; also return the join mode (file|id) and the id column."""
    csvs = sorted(p for p in root.glob("*.csv") if p.is_file())
    chosen = root / "metadata.csv" if (root / "metadata.csv").is_file() else (csvs[0] if len(csvs) == 1 else None)
    if chosen is None:
        return {}, None, "none"
    try:
        df, _, bad = read_csv(chosen)
    except DatasetError as exc:  # the structures still import, without properties
        rows.rejected.append(Rejected(chosen.name, f"the metadata file was not used: {exc}"))
        rows.meta.update(metadata=chosen.name, metadata_unused=str(exc))
        return {}, None, "none"
    file_col = next((c for c in df.columns if (df[c].map(lambda v: bool(v) and structure_format(str(v)) is not None).mean() >= 0.5)), None)
    id_col = id_column(df.columns)
    rows.meta.update(metadata=chosen.name, metadata_malformed_rows=len(bad))
    if file_col is None and id_col is None:
        rows.meta["metadata_unused"] = "no file-name or id column"
        return {}, None, "none"
    kept, dropped = select_properties(df, skip={file_col, id_col})
    rows.meta["dropped_columns"] = dropped
    rows.properties = {new: [] for new in kept.values()}
    rows.descriptions = {new: f"column {old!r} of {chosen.name}" for old, new in kept.items()}
    key_col = file_col or id_col
    lookup: dict[str, dict[str, Any]] = {}
    for record in df.to_dict("records"):
        key = str(record[key_col]).strip().replace("\\", "/")
        entry = {"id": str(record[id_col]).strip() if id_col else "",
                 "props": {new: (record[old] or None) for old, new in kept.items()}}
        lookup.setdefault(key, entry)
        if file_col:
            lookup.setdefault(Path(key).name, entry)
    return lookup, id_col, "file" if file_col else "id"


def _find(lookup: dict[str, dict[str, Any]], rel: str, mode: str) -> dict[str, Any] | None:
    if mode == "file":
        return lookup.get(rel) or lookup.get(Path(rel).name)
    if mode == "id":
        tokens = Path(strip_suffix(rel)).name.split("_")
        spans = sorted(((i, j) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)),
                       key=lambda s: s[0] - s[1])  # longest candidate first
        for i, j in spans:
            if (hit := lookup.get("_".join(tokens[i:j]))) is not None:
                return hit
    return None


def _structure_files(root: Path) -> list[Path]:
    """Structure files under ``root`` (hidden ones skipped, symlinked folders not followed), capped at ``max_rows``."""
    cap = limits().max_rows
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and structure_format(name):
                found.append(Path(folder) / name)
                if len(found) > cap:
                    raise refusal(root.name, "holds more structure files than allowed", "max_rows")
    return sorted(found)


def folder_rows(root: Path, *, source: str, max_atoms: int | None = None) -> Rows:
    """Rows of a folder of structure files, with properties from an optional metadata CSV."""
    files = _structure_files(root)
    if not files:
        raise DatasetError(clip(f"{shown(root.name)}: holds no CIF, POSCAR, JSON or extxyz files."))
    rows = Rows(format="folder", source=source)
    lookup, id_col, mode = _metadata_lookup(root, rows)
    matched = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        record = _find(lookup, rel, mode)
        matched += record is not None
        ident = (record["id"] if record and record["id"] else "") or strip_suffix(rel)
        kind = str(structure_format(path.name))
        try:
            text = read_text(path)
            if kind == "extxyz":  # the file's first frame, located without letting ase read a count
                text = first_frame(text, path.name, max_atoms=max_atoms or default_max_atoms())
        except DatasetError as exc:
            rows.rejected.append(Rejected(rel, str(exc).removeprefix(f"{shown(path.name)}: ")))
            continue
        rows.add(rel, ident, (kind, text), record["props"] if record else {})
    rows.meta.update(files=len(files), files_with_metadata=matched, id_column=id_col or "")
    return rows


def split_cif_blocks(text: str) -> list[str]:
    """The data blocks of a CIF; blocks without atom sites are dropped when others have them."""
    blocks = [b for b in _BLOCK_START.split(text) if b.lstrip().lower().startswith("data_")]
    with_sites = [b for b in blocks if "_atom_site_" in b.lower()]
    return with_sites or blocks or [text]


def structure_file_rows(path: Path, *, source: str, kind: str) -> Rows:
    """Rows of one CIF (each data block a row) or POSCAR file."""
    text = read_text(path, STRUCTURE)
    rows = Rows(format=kind, source=source)
    parts = split_cif_blocks(text) if kind == "cif" else [text]
    if len(parts) > limits().max_rows:
        raise refusal(path.name, f"holds {len(parts):,} data blocks", "max_rows")
    stem = Path(strip_suffix(path.name)).name
    for k, part in enumerate(parts):
        label = path.name if len(parts) == 1 else f"{path.name} block {k}"
        rows.add(label, stem if len(parts) == 1 else f"{stem}-{k}", (kind, part), {})
    return rows
