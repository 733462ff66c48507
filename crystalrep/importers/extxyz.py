"""Reader for extxyz files, frame by frame: one row per frame, scalar comment-line keys as properties.

The file is read line by line and cut into frames by their atom-count lines; each frame is
bounded before anything parses it: its count against ``max_atoms``, its bytes against
``max_file_bytes`` (one frame is one structure), its comment line against ``max_header_bytes``,
and the frames against ``max_rows``. A count line that is not a count (or is over the limit)
rejects that frame and the scan resumes at the next line holding a lone count, so a broken frame
between good ones costs only itself, reported in one sentence. Properties and the id come from
the comment line (ase's own ``key=value`` parser); the atoms are parsed where the chunk lands, by
:func:`crystalrep.structures.read_structures` within its time budget.

:func:`extxyz_stream` reads the file twice, never holding more than one frame: once to count the
frames and learn the property columns, once to yield rows. Memory does not grow with the frames.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crystalrep.datasets import DatasetError
from crystalrep.importers.bounded import STREAM, clip, limits, open_bytes, refusal, shown
from crystalrep.importers.rows import RawRow, Rejected, Rows, RowStream
from crystalrep.importers.tabular import id_column, property_names

CELL_KEYS = ("Lattice", "Properties", "pbc")  # what ase turns into the cell and the atom arrays, not info


def default_max_atoms() -> int:
    """The import's default cap on atoms per crystal: ``max_atoms`` of the current limits (env overrides apply)."""
    from crystalrep.limits import current_limits

    return current_limits().max_atoms


@dataclass(frozen=True)
class Frame:
    """One located frame: its index in the file, the line of its count and its text."""

    index: int
    line: int
    text: str


def _count(line: str) -> int | None:
    """The atom count on a frame's first line (``12``, or ``1e9`` written as a float), else None."""
    token = line.split(maxsplit=1)[0] if line.strip() else ""
    try:
        return int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            return None
        return int(value) if math.isfinite(value) and value.is_integer() else None


def _lone_count(line: str) -> bool:
    """A line holding only a positive integer: where a frame can start (an atom line has 4+ fields)."""
    token = line.strip()
    return token.isascii() and token.isdigit() and int(token[:12]) > 0


def scan_frames(lines: Iterable[str], name: str, *, max_atoms: int) -> Iterator[Frame | Rejected]:
    """Frames of extxyz text, in order, each located and bounded before any parsing; see the module docstring.

    A frame that cannot be located is yielded as :class:`Rejected` (one sentence) and the scan
    resumes at the next lone count line. Raises :class:`DatasetError` past ``max_rows`` frames.
    """
    lim = limits()
    it = iter(lines)
    lineno, index, pending = 0, 0, None
    while True:
        line = pending if pending is not None else next(it, None)
        pending = None
        if line is None:
            return
        lineno += 1
        if not line.strip():
            continue
        if index >= lim.max_rows:
            raise refusal(name, "holds more frames than allowed", "max_rows")
        count, problem = _count(line) or 0, ""
        if count < 1:
            problem = f"line {lineno} should hold the frame's atom count, not {clip(line.strip(), 30)!r}"
        elif count > max_atoms:
            problem = f"it declares {count:,} atoms, above the limit of {max_atoms:,} (max_atoms)"
        if problem:
            start = lineno
            for skip in it:
                if _lone_count(skip):
                    pending = skip
                    break
                lineno += 1
            skipped = f"line {start} was skipped" if lineno == start else f"lines {start}-{lineno} were skipped"
            yield Rejected(f"frame {index}", clip(f"{problem}; {skipped}."))
            index += 1
            continue
        parts, size, start, over = [line], len(line), lineno, ""
        for _ in range(count + 1):
            if (nxt := next(it, None)) is None:
                break
            lineno += 1
            size += len(nxt)
            if over:
                continue  # the rest of a frame over a bound is only counted, never kept
            if len(parts) == 1 and len(nxt) > lim.max_header_bytes:
                over = f"its comment line is longer than {lim.max_header_bytes:,} characters (max_header_bytes)"
            elif size > lim.max_file_bytes:
                over = f"it is longer than {lim.max_file_bytes:,} characters (max_file_bytes)"
            if over:
                parts = []
            else:
                parts.append(nxt)
        if lineno - start < count + 1:
            yield Rejected(f"frame {index}", f"it declares {count:,} atoms but only {max(lineno - start - 1, 0):,} "
                                             "lines follow before the end of the file.")
            return
        yield Rejected(f"frame {index}", f"{over}.") if over else Frame(index, start, "".join(parts))
        index += 1


def _file_lines(path: Path) -> Iterator[str]:
    """The lines of a (gzipped) file within ``max_stream_bytes``; a line longer than a frame may be is cut."""
    cap = limits().max_file_bytes
    with open_bytes(path, STREAM) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace")
        while line := text.readline(cap + 1):
            if len(line) > cap and not line.endswith("\n"):  # its head already breaks the frame's bound
                while (rest := text.readline(cap + 1)) and not rest.endswith("\n"):
                    continue
            yield line


def first_frame(text: str, name: str, *, max_atoms: int) -> str:
    """The first frame of extxyz text (a folder's ``.xyz`` file contributes only that one).

    Raises:
        DatasetError: When the first frame cannot be located (one sentence naming ``name``).
    """
    for item in scan_frames(text.splitlines(keepends=True), name, max_atoms=max_atoms):
        if isinstance(item, Rejected):
            raise DatasetError(clip(f"{shown(name)}: frame 0: {item.reason}"))
        return item.text
    raise DatasetError(clip(f"{shown(name)}: holds no frames."))


def _info_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else None


def frame_row(frame: Frame, stem: str) -> RawRow | Rejected:
    """The raw row of a frame: label, id, ``("extxyz", text)`` and its scalar comment-line values."""
    from ase.io.extxyz import key_val_str_to_dict

    label = f"frame {frame.index}"
    comment = frame.text.split("\n", 2)[1].strip() if "\n" in frame.text else ""
    try:
        info = key_val_str_to_dict(comment) if comment else {}
    # ase's tokenizer raises several types on a malformed comment line (unbalanced quotes, bad arrays).
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        return Rejected(label, clip(f"its comment line is not readable extxyz ({str(exc).strip()[:150]})."))
    if "Lattice" not in info:
        return Rejected(label, "the frame has no periodic cell (no Lattice= in its header).")
    values = {str(key): _info_scalar(v) for key, v in info.items() if key not in CELL_KEYS}
    id_key = id_column(values)
    ident = str(values.pop(id_key)) if id_key and values.get(id_key) is not None else f"{stem}-{frame.index}"
    names = property_names(values)
    return label, ident, ("extxyz", frame.text), {names[key]: v for key, v in values.items() if v is not None}


def _stem(path: Path) -> str:
    base = Path(path.name.removesuffix(".gz"))
    return base.stem if base.suffix.lower() in (".xyz", ".extxyz") else base.name


def _rows(path: Path, max_atoms: int) -> Iterator[RawRow | Rejected]:
    stem = _stem(path)
    for item in scan_frames(_file_lines(path), path.name, max_atoms=max_atoms):
        yield item if isinstance(item, Rejected) else frame_row(item, stem)


def _no_frames(path: Path, first: Rejected | None) -> DatasetError:
    why = f" ({first.row}: {first.reason.rstrip('.')})" if first else ""
    return DatasetError(clip(f"{shown(path.name)}: holds no usable frame{why}."))


def extxyz_stream(path: Path, *, source: str, max_atoms: int | None = None) -> RowStream:
    """Stream an extxyz file's frames as rows; see the module docstring.

    Raises:
        DatasetError: When the file is over a byte or row limit, has more distinct property keys
            than ``max_columns``, or holds no usable frame.
    """
    cap = max_atoms or default_max_atoms()
    columns: dict[str, None] = {}
    total, good, first = 0, 0, None
    max_columns = limits().max_columns
    for item in _rows(path, cap):
        total += 1
        if isinstance(item, Rejected):
            first = first or item
            continue
        good += 1
        columns.update(dict.fromkeys(item[3]))
        if len(columns) > max_columns:
            raise refusal(path.name, f"has more than {max_columns:,} distinct property keys", "max_columns")
    if not good:
        raise _no_frames(path, first)
    stream = RowStream(format="extxyz", total=total, rows=iter(()), columns=list(columns),
                       descriptions={c: f"info key {c!r} of {path.name}" for c in columns})

    def generate() -> Iterator[RawRow]:
        for item in _rows(path, cap):
            if isinstance(item, Rejected):
                stream.rejected.append(item)
            else:
                yield item

    stream.rows = generate()
    return stream


def extxyz_rows(path: Path, *, source: str, max_atoms: int | None = None) -> Rows:
    """Rows of an extxyz file, one per frame, in memory (the whole-file import); see :func:`extxyz_stream`."""
    rows = Rows(format="extxyz", source=source)
    first = None
    for item in _rows(path, max_atoms or default_max_atoms()):
        if isinstance(item, Rejected):
            rows.rejected.append(item)
            first = first or item
        else:
            rows.add(*item)
    if not rows.ids:
        raise _no_frames(path, first)
    rows.descriptions = {c: f"info key {c!r} of {path.name}" for c in rows.properties}
    return rows
