"""Readers for structure files: a folder of files (+ metadata CSV), one CIF/POSCAR file, extxyz.

In a folder every CIF / POSCAR / JSON / extxyz file is one row (its first structure). A
metadata CSV (``metadata.csv``, or the only CSV) is joined by a file-name column when one
exists, else by matching its id column to a part of the file stem (``mp_mp-1234.cif`` ↔
``mp-1234``). Files without metadata still import, with empty properties.
"""

from __future__ import annotations

import gzip
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from crystalrep.datasets import DatasetError
from crystalrep.importers.rows import Rejected, Rows
from crystalrep.importers.tabular import id_column, property_name, read_csv, select_properties

log = logging.getLogger(__name__)

SUFFIX_KINDS = {".cif": "cif", ".mcif": "cif", ".vasp": "poscar", ".poscar": "poscar",
                ".json": "json", ".xyz": "extxyz", ".extxyz": "extxyz"}
_BLOCK_START = re.compile(r"(?im)^[ \t]*(?=data_)")


def file_kind(name: str) -> str | None:
    """The structure format of a file name (``.gz`` allowed), or None if it is not one."""
    lower = Path(name.lower().removesuffix(".gz"))
    if lower.name.startswith(("poscar", "contcar")):
        return "poscar"
    return SUFFIX_KINDS.get(lower.suffix)


def read_text(path: Path) -> str:
    """File content as text, gunzipped when the name ends in ``.gz``."""
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _stem(rel: str) -> str:
    path = Path(rel.removesuffix(".gz"))
    return path.with_suffix("").as_posix() if path.suffix.lower() in SUFFIX_KINDS else path.as_posix()


def _metadata_lookup(root: Path, rows: Rows) -> tuple[dict[str, dict[str, Any]], str | None, str]:
    """Map file keys to metadata records; also return the join mode (file|id) and the id column."""
    csvs = sorted(p for p in root.glob("*.csv") if p.is_file())
    chosen = root / "metadata.csv" if (root / "metadata.csv").is_file() else (csvs[0] if len(csvs) == 1 else None)
    if chosen is None:
        return {}, None, "none"
    df, _, bad = read_csv(chosen)
    file_col = next((c for c in df.columns if (df[c].map(lambda v: bool(v) and file_kind(str(v)) is not None).mean() >= 0.5)), None)
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
        tokens = Path(_stem(rel)).name.split("_")
        spans = sorted(((i, j) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)),
                       key=lambda s: s[0] - s[1])  # longest candidate first
        for i, j in spans:
            if (hit := lookup.get("_".join(tokens[i:j]))) is not None:
                return hit
    return None


def folder_rows(root: Path, *, source: str) -> Rows:
    """Rows of a folder of structure files, with properties from an optional metadata CSV."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and file_kind(p.name)
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise DatasetError(f"{root.name}: holds no CIF, POSCAR, JSON or extxyz files.")
    rows = Rows(format="folder", source=source)
    lookup, id_col, mode = _metadata_lookup(root, rows)
    matched = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        record = _find(lookup, rel, mode)
        matched += record is not None
        ident = (record["id"] if record and record["id"] else "") or _stem(rel)
        try:
            text = read_text(path)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            rows.rejected.append(Rejected(rel, f"the file cannot be read ({exc})."))
            continue
        rows.add(rel, ident, (str(file_kind(path.name)), text), record["props"] if record else {})
    rows.meta.update(files=len(files), files_with_metadata=matched, id_column=id_col or "")
    return rows


def split_cif_blocks(text: str) -> list[str]:
    """The data blocks of a CIF; blocks without atom sites are dropped when others have them."""
    blocks = [b for b in _BLOCK_START.split(text) if b.lstrip().lower().startswith("data_")]
    with_sites = [b for b in blocks if "_atom_site_" in b.lower()]
    return with_sites or blocks or [text]


def structure_file_rows(path: Path, *, source: str, kind: str) -> Rows:
    """Rows of one CIF (each data block a row) or POSCAR file."""
    try:
        text = read_text(path)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path.name}: cannot be read ({exc}).") from exc
    rows = Rows(format=kind, source=source)
    parts = split_cif_blocks(text) if kind == "cif" else [text]
    stem = Path(_stem(path.name)).name
    for k, part in enumerate(parts):
        label = path.name if len(parts) == 1 else f"{path.name} block {k}"
        rows.add(label, stem if len(parts) == 1 else f"{stem}-{k}", (kind, part), {})
    return rows


def _info_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else None


def extxyz_rows(path: Path, *, source: str) -> Rows:
    """Rows of an extxyz file, one per frame; scalar ``info`` keys (and energies) become properties."""
    from ase.io import read

    # ase raises many exception types on malformed files; any of them means "unreadable extxyz".
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = read(str(path), index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        raise DatasetError(f"{path.name}: is not readable extxyz ({str(exc).strip()[:200]}).") from exc
    rows = Rows(format="extxyz", source=source)
    stem = Path(_stem(path.name)).name
    for k, atoms in enumerate(frames):
        info = {key: _info_scalar(v) for key, v in atoms.info.items()}
        if atoms.calc is not None:
            for key in ("energy", "free_energy"):
                if key in atoms.calc.results:
                    info.setdefault(key, _info_scalar(np.asarray(atoms.calc.results[key]).reshape(-1)[0]))
        id_key = id_column(info)
        ident = str(info.pop(id_key)) if id_key and info.get(id_key) is not None else f"{stem}-{k}"
        label = f"frame {k}"
        if atoms.cell.rank < 3:
            rows.rejected.append(Rejected(label, "the frame has no periodic cell (no Lattice= in its header)."))
            continue
        props = {property_name(key): v for key, v in info.items() if v is not None}
        item = ("arrays", (np.array(atoms.cell), atoms.numbers.copy(), atoms.positions.copy()))
        rows.add(label, ident, item, props)
    if not frames:
        raise DatasetError(f"{path.name}: holds no frames.")
    rows.descriptions = {c: f"info key {c!r} of {path.name}" for c in rows.properties}
    return rows
