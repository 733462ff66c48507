"""Streaming, parallel import: rows in chunks to worker processes or Ray, shards to disk, one commit.

:func:`import_streaming` reads a source as a stream of rows (:mod:`crystalrep.importers.streams`),
cuts it into chunks, has each chunk parsed, validated and labelled where it lands
(:func:`~crystalrep.importers.chunks.process_chunk`, the same bounded per-row path as every other
import), and writes each chunk's rows as one parquet shard through a
:class:`~crystalrep.datasets.ShardWriter`, in row order. ``meta.json`` is written last: a killed
import leaves the previous version of the dataset (or none), never a mix. Peak memory is a few
chunks in flight plus one id per row (duplicates are rejected across the whole source).

The fingerprint is hashed in row order from what each chunk returns, so it equals the one a
whole-file import of the same source gives, however many workers (or Ray nodes) took part.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crystalrep.datasets import (
    FORMAT_VERSION,
    DatasetError,
    PropertyInfo,
    ShardWriter,
    check_name,
    load_dataset,
)
from crystalrep.datasets.labels import kind_of, resolve_info
from crystalrep.importers.api import check_target, detect_format
from crystalrep.importers.archive import extract_zip
from crystalrep.importers.bounded import TABLE, clip, limits, read_bytes, refusal, shown
from crystalrep.importers.chunks import Chunk, ChunkResult, limits_env, process_chunk
from crystalrep.importers.fanout import default_workers, fan_out
from crystalrep.importers.parse import Progress, warm_imports
from crystalrep.importers.rows import MAX_META_REJECTED, ImportReport, Rejected, RowStream
from crystalrep.importers.streams import csv_stream, folder_stream, rows_stream

log = logging.getLogger(__name__)

MIN_CHUNK, MAX_CHUNK, TARGET_CHUNKS = 250, 5_000, 32


def chunk_rows_for(total: int) -> int:
    """Rows per chunk (and shard): about 32 chunks, each of 250 to 5,000 rows."""
    return min(MAX_CHUNK, max(MIN_CHUNK, math.ceil(total / TARGET_CHUNKS)))


def open_stream(path: Path, fmt: str, *, source: str, max_atoms: int | None, stack: ExitStack) -> RowStream:
    """The rows of ``path`` in format ``fmt`` (see :func:`crystalrep.importers.api.detect_format`).

    A zip is unpacked member by member (:mod:`crystalrep.importers.archive`) into a temporary
    folder that ``stack`` removes; its rejected members lead the stream's rejected rows.
    """
    if fmt == "csv":
        return csv_stream(path)
    from crystalrep.importers.extxyz import extxyz_stream
    from crystalrep.importers.files import structure_file_rows
    from crystalrep.importers.matbench import matbench_stream

    if fmt == "zip":
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crystalrep-zip-")))
        target, members = extract_zip(path.name, read_bytes(path, TABLE), tmp / "zip")
        inner = detect_format(target)
        if inner == "zip":
            raise DatasetError(clip(f"{shown(path.name)}: holds only another zip archive; unpack it first."))
        stream = open_stream(target, inner, source=source, max_atoms=max_atoms, stack=stack)
        stream.rejected[:0] = members
        return stream
    if fmt == "folder":
        return folder_stream(path, source=source, max_atoms=max_atoms)
    if fmt == "extxyz":
        return extxyz_stream(path, source=source, max_atoms=max_atoms)
    if fmt in ("json", "matbench"):  # a matbench table is streamed; pymatgen dicts are read whole
        return matbench_stream(path, source=source)
    return rows_stream(structure_file_rows(path, source=source, kind=fmt))


@dataclass
class _Tally:
    """What the chunk results add up to, in row order."""

    counts: dict[str, list[int]]  # property -> [numeric values, present values]
    digest: Any = field(default_factory=hashlib.sha256)
    rejected: list[Rejected] = field(default_factory=list)
    elements: set[int] = field(default_factory=set)
    done: int = 0

    def add(self, result: ChunkResult) -> None:
        self.digest.update(result.fingerprint)
        self.rejected += result.rejected
        self.elements |= result.elements
        for col, (numeric, present) in result.counts.items():
            self.counts[col][0] += numeric
            self.counts[col][1] += present
        self.done += result.rows + len(result.rejected)

    def properties(self, descriptions: dict[str, str], hints: dict[str, PropertyInfo] | None) -> dict[str, Any]:
        """Each property's info for ``meta.json``: the kind from the counts, unit and text from the hints."""
        out = {}
        for col, (numeric, present) in self.counts.items():
            info = resolve_info(col, kind_of(numeric, present), (hints or {}).get(col))
            if col not in (hints or {}) and col in descriptions:
                info = PropertyInfo(col, info.unit, descriptions[col], info.kind)
            out[col] = asdict(info)
        return out


def _warm(kinds: set[str]) -> None:
    import pyarrow.parquet  # noqa: F401 - imported once here, shared by the forked workers
    import pymatgen.symmetry.analyzer  # noqa: F401

    warm_imports(kinds)


def _chunks(stream: RowStream, *, name: str, size: int, max_atoms: int | None, source: str,
            duplicates: list[Rejected]) -> Iterator[Chunk]:
    """Cut the stream into chunks; a repeated id is rejected (the first row with it is kept)."""
    seen: set[str] = set()
    env, cap = limits_env(), limits().max_rows
    labels: list[str] = []
    ids: list[str] = []
    items: list[tuple[str, Any]] = []
    props: dict[str, list[Any]] = {c: [] for c in stream.columns}
    count = index = 0
    for label, ident, item, values in stream.rows:
        count += 1
        if count > cap:
            raise refusal(source, f"holds more than {cap:,} rows", "max_rows")
        if ident in seen:
            duplicates.append(Rejected(label, f"duplicate id {ident!r}; the first row with it was kept."))
            continue
        seen.add(ident)
        labels.append(label)
        ids.append(ident)
        items.append(item)
        for col, column in props.items():
            column.append(values.get(col))
        if len(ids) >= size:
            yield Chunk(index, name, labels, ids, items, props, max_atoms, env)
            labels, ids, items, props, index = [], [], [], {c: [] for c in stream.columns}, index + 1
    if ids:
        yield Chunk(index, name, labels, ids, items, props, max_atoms, env)


def import_streaming(path: str | Path, *, name: str, overwrite: bool = False, workers: int | None = None,
                     ray: str | None = None, max_atoms: int | None = None, progress: Progress | None = None,
                     source: str | None = None, license: str = "", description: str = "",
                     property_info: dict[str, PropertyInfo] | None = None,
                     chunk_rows: int | None = None) -> ImportReport:
    """Import a file or folder into dataset ``name`` in chunks, written as shards; see the module docstring.

    Args:
        path: CSV, folder, ``.xyz``/``.extxyz``, ``.json[.gz]``, CIF or POSCAR.
        name: Dataset name (letters, digits, ``_.-``).
        overwrite: Replace an existing dataset of that name (only once the new one is complete).
        workers: Processes parsing chunks on this machine; default every core.
        ray: ``"local"`` for a private Ray on this machine or a cluster address (``HOST:PORT``);
            chunks then go to Ray tasks and ``workers`` is ignored.
        max_atoms: Largest cell accepted; larger rows are rejected.
        progress: Called with ``(rows done, rows in the source)``.
        source: Recorded as ``meta["source"]``; defaults to the absolute path.
        license: Recorded as ``meta["license"]``.
        description: Recorded as ``meta["description"]``.
        property_info: Units / descriptions for named property columns.
        chunk_rows: Rows per chunk and shard; default from the row count (250 to 5,000).

    Returns:
        The committed dataset (opened lazily from its shards), the rejected rows and the format.

    Raises:
        DatasetError: If the name is taken (and not ``overwrite``), the source is unreadable or
            over a limit, or no row is valid; the dataset on disk is then unchanged.
    """
    start = time.perf_counter()
    check_target(check_name(name), overwrite=overwrite)
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(clip(f"{shown(str(path))} does not exist."))
    fmt = detect_format(path)
    src = source or str(path.resolve())
    with ExitStack() as stack:
        return _run(open_stream(path, fmt, source=src, max_atoms=max_atoms, stack=stack), name=name, fmt=fmt, src=src,
                    overwrite=overwrite, workers=workers, ray=ray, max_atoms=max_atoms, progress=progress,
                    license=license, description=description, property_info=property_info, chunk_rows=chunk_rows,
                    start=start)


def _run(stream: RowStream, *, name: str, fmt: str, src: str, overwrite: bool, workers: int | None, ray: str | None,
         max_atoms: int | None, progress: Progress | None, license: str, description: str,
         property_info: dict[str, PropertyInfo] | None, chunk_rows: int | None, start: float) -> ImportReport:
    """Chunk, process and write ``stream``; commit and open the dataset (see :func:`import_streaming`)."""
    duplicates: list[Rejected] = []
    chunks = _chunks(stream, name=name, size=chunk_rows or chunk_rows_for(stream.total), max_atoms=max_atoms,
                     source=src, duplicates=duplicates)
    if ray is None:  # forked workers inherit these imports instead of each paying for them
        _warm({"cif"} if fmt == "csv" else {"cif", "poscar", "extxyz"})
    tally = _Tally({c: [0, 0] for c in stream.columns})
    with ShardWriter(name, overwrite=overwrite) as writer:
        results = fan_out(process_chunk, chunks, workers=workers or default_workers(), ray=ray)
        with closing(results):  # stops the workers at once if this loop fails
            for result in results:
                if result.rows:
                    writer.add(result.blob, rows=result.rows, sites=result.sites)
                tally.add(result)
                if progress is not None:  # rows the reader or the id check turned away count as done
                    progress(min(tally.done + len(stream.rejected) + len(duplicates), stream.total), stream.total)
        rejected = [Rejected(clip(r.row, 100), clip(r.reason)) for r in stream.rejected + duplicates] + tally.rejected
        n_rows = sum(s["rows"] for s in writer.shards)
        if not n_rows:
            first = f" (first reason: {rejected[0].row}: {rejected[0].reason.rstrip('.')})" if rejected else ""
            shown_src = src if len(src) <= 80 else "…" + src[-79:]
            raise DatasetError(clip(f"{shown_src}: no structure could be imported{first}."))
        writer.commit({
            **stream.meta, "source": src, "license": license, "description": description, "format": stream.format,
            "imported_rows": n_rows, "rejected_rows": len(rejected),
            "rejected": [{"row": r.row, "reason": r.reason} for r in rejected[:MAX_META_REJECTED]],
            "name": name, "format_version": FORMAT_VERSION, "n_structures": n_rows,
            "n_sites": sum(s["sites"] for s in writer.shards), "n_elements": len(tally.elements),
            "fingerprint": tally.digest.hexdigest(), "properties": tally.properties(stream.descriptions, property_info),
        })
    log.info("imported %d rows (%d rejected) from %s in %d shards in %.1f s", n_rows, len(rejected), src,
             len(writer.shards), time.perf_counter() - start)
    return ImportReport(dataset=load_dataset(name), rejected=rejected, format=stream.format)
