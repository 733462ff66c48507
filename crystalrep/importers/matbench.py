"""Streaming reader for matbench JSON (pandas "split": ``columns``, ``index``, ``data``), one row at a time.

Bounds come first: the file's bytes (``max_decompressed_bytes``, gzip included) and its nesting
(``max_json_depth``, a byte scan that parses nothing). Then ijson (its yajl C backend) reads the
file incrementally: once for ``columns``, once to count the rows, check ``index`` and learn which
columns hold a value, and once more to yield rows, ``index`` and ``data`` read side by side. No
pass holds more than one row, so memory does not grow with the rows. Rows, ids, properties and
rejections follow the whole-file reader (:func:`~crystalrep.importers.jsontables.json_rows`); a file
ijson cannot read, or that is not a matbench table, goes to that bounded reader, which gives the
same rows or its one-sentence refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from crystalrep.importers.bounded import STREAM, clip, file_json_depth, limits, open_bytes, refusal
from crystalrep.importers.jsontables import check_columns, json_rows, scalar, split_row
from crystalrep.importers.rows import RawRow, Rejected, RowStream
from crystalrep.importers.streams import rows_stream
from crystalrep.importers.tabular import property_names

log = logging.getLogger(__name__)


def _items(path: Path, prefix: str) -> Generator[Any, None, None]:
    """The values at ``prefix`` (ijson syntax: ``data.item`` is each element of ``data``), read incrementally."""
    import ijson

    with open_bytes(path, STREAM) as fh:
        yield from ijson.items(fh, prefix, use_float=True)


def _survey(path: Path, columns: list[str]) -> tuple[int, bool, set[str]]:
    """Rows in ``data``, whether ``index`` has one scalar per row, and the columns holding a value."""
    cap = limits().max_rows
    filled: set[str] = set()
    n_rows = 0
    with closing(_items(path, "data.item")) as rows:
        for record in rows:
            n_rows += 1
            if n_rows > cap:
                raise refusal(path.name, f"has more than {cap:,} rows", "max_rows")
            if isinstance(record, list) and len(record) == len(columns):
                filled.update(c for c, v in zip(columns, record, strict=True)
                              if c != "structure" and v is not None and scalar(v))
    n_index, plain = 0, True
    with closing(_items(path, "index.item")) as index:
        for value in index:
            n_index += 1
            plain = plain and scalar(value)
            if n_index > n_rows:
                break
    return n_rows, plain and n_index == n_rows, filled


def matbench_stream(path: Path, *, source: str) -> RowStream:
    """Stream a matbench JSON file's rows; see the module docstring.

    Raises:
        DatasetError: When the file is over a byte, depth, row or column limit, or is not a
            readable matbench table or list of pymatgen dicts (one sentence).
    """
    import ijson

    if file_json_depth(path, field=STREAM) > limits().max_json_depth:
        raise refusal(path.name, "nests JSON deeper than allowed", "max_json_depth")
    try:
        with closing(_items(path, "columns")) as found:
            columns = next(found, None)
        if columns is None:  # not a "split" table: pymatgen dicts, or the wrong shape
            return rows_stream(json_rows(path, source=source))
        columns = check_columns(columns, path.name)
        n_rows, use_index, filled = _survey(path, columns)
    except ijson.JSONError as exc:  # e.g. NaN, which Python's json reads: the whole-file reader decides
        log.info("%s: not read incrementally (%s); reading it whole", path.name, exc)
        return rows_stream(json_rows(path, source=source))
    if not n_rows:
        return rows_stream(json_rows(path, source=source))  # its sentence says what 'data' is instead
    stem = path.name[: len(path.name.lower().removesuffix(".gz").removesuffix(".json"))]
    names = property_names([c for c in dict.fromkeys(columns) if c != "structure"])
    kept = [c for c in names if c in filled]
    stream = RowStream(format="matbench-json", total=n_rows, rows=iter(()), columns=[names[c] for c in kept],
                       descriptions={names[c]: f"column {c!r} of {path.name}" for c in kept})
    kept_names = set(stream.columns)

    def generate() -> Iterator[RawRow]:
        with closing(_items(path, "data.item")) as records, closing(_items(path, "index.item")) as index:
            for k, record in enumerate(records):
                ident = f"{stem}-{next(index) if use_index else k}"
                label = f"row {k} (id {clip(ident, 60)})"
                row = split_row(columns, record, names)
                if row is None:
                    stream.rejected.append(Rejected(label, f"the row does not have the {len(columns)} columns of the header."))
                    continue
                yield label, ident, ("json", row[0]), {c: v for c, v in row[1].items() if c in kept_names}

    stream.rows = generate()
    return stream
