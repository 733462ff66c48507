"""Row streams for a streaming import: a CSV read twice in a bounded loop, other formats by their reader.

A :class:`RowStream` yields raw rows ``(label, id, (kind, payload), properties)`` one at a time.
A CSV is read twice through :mod:`crystalrep.importers.bounded`: a first pass counts rows and
gathers what :func:`~crystalrep.importers.tabular.select_properties` decides on (per column:
filled cells, their total length and spaces, list-like cells), so the columns kept are the same
as a whole-file import's; the second pass yields rows. Memory does not grow with the row count
beyond those counters. A folder is listed first and each file read when its row is taken. An
extxyz file (:func:`crystalrep.importers.extxyz.extxyz_stream`) and a matbench JSON table
(:func:`crystalrep.importers.matbench.matbench_stream`) are read twice too, a frame or a row at a
time. JSON lists of pymatgen dicts and a single CIF or POSCAR (files within
``max_decompressed_bytes``) are read by their own reader and then streamed
(:func:`rows_stream`), so their parsing and labelling still run in chunks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crystalrep.datasets import DatasetError
from crystalrep.importers.bounded import STREAM, clip, limits, open_bytes, read_text, refusal, shown
from crystalrep.importers.rows import RawRow, Rejected, Rows, RowStream
from crystalrep.importers.tabular import (  # one naming rule for the whole-file and the streaming reader
    INDEX_COLUMNS,
    MAX_TEXT_LENGTH,
    MAX_WORDS,
    _header,
    id_column,
    property_names,
)


@dataclass
class _ColumnStats:
    filled: int = 0
    length: int = 0
    spaces: int = 0
    listlike: int = 0

    def add(self, value: str) -> None:
        text = value.strip()
        if text:
            self.filled += 1
            self.length += len(text)
            self.spaces += text.count(" ")
            self.listlike += text[0] in "[{"

    def verdict(self) -> str | None:
        """Why the column is dropped (as ``select_properties`` says it), or None to keep it."""
        if not self.filled:
            return "empty"
        if self.length / self.filled > MAX_TEXT_LENGTH or self.spaces / self.filled >= MAX_WORDS - 1:
            return "free text"
        if self.listlike / self.filled > 0.9:
            return "list-like values"
        return None


def _records(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """``(record number, record)`` of each CSV record, within the byte, header, column and row limits.

    ``header`` is filled with the column names (pandas-style, as the whole-file reader names them)
    before the first record is yielded.
    """
    lim = limits()
    field_limit = csv.field_size_limit()
    csv.field_size_limit(lim.max_file_bytes)  # a cell holds at most one structure file
    try:
        with open_bytes(path, STREAM) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=""))
            names = next(reader, [])
            if sum(len(n) for n in names) + len(names) > lim.max_header_bytes:
                raise refusal(path.name, "has a header line that is too long", "max_header_bytes")
            if len(names) > lim.max_columns:
                raise refusal(path.name, f"has {len(names):,} columns", "max_columns")
            if not names:
                raise DatasetError(clip(f"{shown(path.name)}: is empty."))
            header[:] = _header(names)
            for k, record in enumerate(reader):
                if k >= lim.max_rows:
                    raise refusal(path.name, "has more rows than allowed", "max_rows")
                yield k, record
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise refusal(path.name, "has a cell larger than allowed", "max_file_bytes") from None
        raise DatasetError(clip(f"{shown(path.name)}: is not a readable CSV file ({exc}).")) from exc
    finally:
        csv.field_size_limit(field_limit)


def csv_stream(path: Path) -> RowStream:
    """Stream a CSV with a ``cif`` column (CDVAE / MP-20 layout); see the module docstring."""
    header: list[str] = []
    records = _records(path, header)
    total, first = 0, next(records, None)  # reading the first record fills the header
    stats = [_ColumnStats() for _ in header]
    for _, record in _chain(first, records):
        if len(record) == len(header):
            total += 1
            for column, value in zip(stats, record, strict=True):
                column.add(value)
    cif_col = next((c for c in header if c.strip().lower() == "cif"), None)
    if cif_col is None:
        raise DatasetError(clip(f"{shown(path.name)}: has no 'cif' column (columns: {', '.join(header[:12])[:150]})."))
    id_col = id_column(header)
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for name, column in zip(header, stats, strict=True):
        if name in (cif_col, id_col) or name.startswith("Unnamed:") or name.strip().lower() in INDEX_COLUMNS:
            continue
        if (why := column.verdict()) is None:
            kept.append(name)
        else:
            dropped[name] = why
    names = property_names(kept)
    stream = RowStream(format="csv", total=total, rows=iter(()), columns=list(names.values()), meta={"dropped_columns": dropped},
                       descriptions={new: f"column {old!r} of {path.name}" for old, new in names.items()})
    stream.rows = _csv_rows(path, header, cif_col, id_col, names, stream.rejected)
    return stream


def _chain(first: tuple[int, list[str]] | None, rest: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    if first is not None:
        yield first
        yield from rest


def _csv_rows(path: Path, header: list[str], cif_col: str, id_col: str | None, names: dict[str, str],
              rejected: list[Rejected]) -> Iterator[RawRow]:
    at = {name: i for i, name in enumerate(header)}
    width = len(header)
    cif_at, id_at = at[cif_col], (at[id_col] if id_col else None)
    props = [(new, at[old]) for old, new in names.items()]
    for k, record in _records(path, []):
        if len(record) != width:
            if record:
                rejected.append(Rejected(f"row {k}", f"it has {len(record)} fields where the header has {width}."))
            continue
        ident = (record[id_at].strip() if id_at is not None else "") or str(k)
        label = f"row {k} (id {clip(ident, 60)})" if id_col else f"row {k}"
        if not record[cif_at].strip():
            rejected.append(Rejected(label, "the cif cell is empty."))
            continue
        yield label, ident, ("cif", record[cif_at]), {new: (record[i] or None) for new, i in props}


def folder_stream(root: Path, *, source: str, max_atoms: int | None = None) -> RowStream:
    """Stream a folder of structure files, reading each file only when its row is taken.

    Files, ids and properties follow :func:`crystalrep.importers.files.folder_rows` (its file
    listing and metadata join are used as they are); only the reading is deferred, so the
    folder's text is never in memory at once.
    """
    from crystalrep.importers.files import _find, _metadata_lookup, _structure_files

    files = _structure_files(root)
    if not files:
        raise DatasetError(clip(f"{shown(root.name)}: holds no CIF, POSCAR, JSON or extxyz files."))
    head = Rows(format="folder", source=source)
    lookup, id_col, mode = _metadata_lookup(root, head)
    stream = RowStream(format="folder", total=len(files), rows=iter(()), columns=list(head.properties),
                       descriptions=dict(head.descriptions), rejected=list(head.rejected), meta=dict(head.meta))

    def generate() -> Iterator[RawRow]:
        from crystalrep.importers.extxyz import default_max_atoms, first_frame
        from crystalrep.structures.formats import strip_suffix, structure_format

        matched = 0
        for path in files:
            rel = path.relative_to(root).as_posix()
            record = _find(lookup, rel, mode)
            matched += record is not None
            kind = str(structure_format(path.name))
            try:
                text = read_text(path)
                if kind == "extxyz":  # the file's first frame, located without letting ase read a count
                    text = first_frame(text, path.name, max_atoms=max_atoms or default_max_atoms())
            except DatasetError as exc:
                stream.rejected.append(Rejected(rel, str(exc).removeprefix(f"{shown(path.name)}: ")))
                continue
            ident = (record["id"] if record and record["id"] else "") or strip_suffix(rel)
            yield rel, ident, (kind, text), record["props"] if record else {}
        stream.meta.update(files=len(files), files_with_metadata=matched, id_column=id_col or "")

    stream.rows = generate()
    return stream


def rows_stream(rows: Rows) -> RowStream:
    """Stream the rows a whole-file reader produced (pymatgen-dict JSON, CIF, POSCAR)."""
    columns = list(rows.properties)

    def generate() -> Iterator[RawRow]:
        for k, ident in enumerate(rows.ids):
            yield rows.labels[k], ident, rows.items[k], {c: rows.properties[c][k] for c in columns}

    return RowStream(format=rows.format, total=len(rows.ids), rows=generate(), columns=columns,
                     rejected=list(rows.rejected), meta=dict(rows.meta),
                     descriptions={c: rows.descriptions[c] for c in columns if c in rows.descriptions})
