"""Bounded reading for every importer: bytes (after decompression), rows, columns, JSON depth.

Each bound is a field of :class:`crystalrep.limits.Limits` (overridable with
``CRYSTALREP_LIMIT_<FIELD>``); a refusal is one sentence naming the file, what was too large and
the limit, never a traceback. A structure file (CIF, POSCAR, one JSON structure) may hold
``max_file_bytes``; a table read whole or a zip ``max_decompressed_bytes``; a table the import
reads row by row (CSV, extxyz, matbench JSON) ``max_stream_bytes``; each before and after gunzipping. Files are streamed and reading stops at the limit, so a gzip or
zip bomb costs at most the limit in memory, never its inflated size.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from crystalrep.datasets import DatasetError
from crystalrep.limits import Limits, clean_message, current_limits

CHUNK = 1 << 20


STRUCTURE, TABLE = "max_file_bytes", "max_decompressed_bytes"  # the byte limit of each kind of file
STREAM = "max_stream_bytes"  # a table read row by row: its memory does not grow with its bytes
MAX_COMPRESSION_RATIO = 200  # text structure files deflate 4-20x; a zip or gzip bomb 1000x and more
RATIO_FLOOR = 1 << 20  # below this many inflated bytes the ratio is not judged


def limits() -> Limits:
    """The limits in force now (``CRYSTALREP_LIMIT_*`` overrides included).

    Raises:
        DatasetError: If an override is malformed (one sentence naming the variable).
    """
    try:
        return current_limits()
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def clip(text: str, limit: int | None = None) -> str:
    """``text`` as one printable line of at most ``max_message_chars`` characters."""
    return clean_message(str(text), limit or limits().max_message_chars)


def shown(name: str) -> str:
    """A file name short enough to leave room for the rest of a sentence."""
    name = clip(name, 10_000)
    return name if len(name) <= 80 else "…" + name[-79:]


def refusal(name: str, what: str, field: str) -> DatasetError:
    """``<file>: <what>; the limit is <value> (<field>, ...)`` as one :class:`DatasetError` sentence."""
    value = getattr(limits(), field)
    return DatasetError(clip(f"{shown(name)}: {what}; the limit is {value:,} ({field}; set "
                             f"CRYSTALREP_LIMIT_{field.upper()} to raise it)."))


class _Capped(io.RawIOBase):
    """A readable stream that raises the refusal once more than ``cap`` bytes came through."""

    def __init__(self, inner: IO[bytes] | io.BufferedIOBase, name: str, field: str, *, packed: IO[bytes] | None = None) -> None:
        super().__init__()
        self._inner, self._name, self._field, self._packed = inner, name, field, packed
        self._cap, self.seen = int(getattr(limits(), field)), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(min(len(view), CHUNK))
        self.seen += len(data)
        if self.seen > self._cap:
            raise refusal(self._name, "unpacks to more bytes than allowed" if self._packed else "is too large",
                          self._field)
        if self._packed is not None and self.seen > RATIO_FLOOR and self.seen > MAX_COMPRESSION_RATIO * self._packed.tell():
            raise DatasetError(clip(f"{shown(self._name)}: is compressed more than {MAX_COMPRESSION_RATIO}:1 "
                                    "(a gzip bomb, not structure data); refused."))
        view[: len(data)] = data
        return len(data)


def _regular(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except OSError as exc:
        raise DatasetError(clip(f"{shown(path.name)}: cannot be read ({exc.strerror or exc}).")) from exc
    if not stat.S_ISREG(info.st_mode):
        raise DatasetError(clip(f"{shown(path.name)}: is not a regular file."))
    return info


@contextmanager
def open_bytes(path: Path, field: str = STRUCTURE) -> Iterator[IO[bytes]]:
    """A binary stream of a file's content (gunzipped for ``.gz``), capped at a byte limit.

    Args:
        path: The file.
        field: ``STRUCTURE`` (``max_file_bytes``), ``TABLE`` (``max_decompressed_bytes``) or
            ``STREAM`` (``max_stream_bytes``); the
            cap applies to the file on disk and again to what it inflates to.

    Raises:
        DatasetError: When the file is not a regular file or passes the cap (raised while
            reading, at the limit, never after inflating everything).
    """
    if _regular(path).st_size > getattr(limits(), field):
        raise refusal(path.name, "is too large", field)
    try:
        with open(path, "rb") as raw:
            if path.name.lower().endswith(".gz"):
                with gzip.GzipFile(fileobj=raw) as inflated:
                    yield io.BufferedReader(_Capped(inflated, path.name, field, packed=raw), CHUNK)
            else:
                yield io.BufferedReader(_Capped(raw, path.name, field), CHUNK)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DatasetError(clip(f"{shown(path.name)}: is not a valid gzip file ({exc}).")) from exc
    except OSError as exc:
        raise DatasetError(clip(f"{shown(path.name)}: cannot be read ({exc.strerror or exc}).")) from exc


def read_bytes(path: Path, field: str = STRUCTURE) -> bytes:
    """The whole (gunzipped) content of a file, within a byte limit (see :func:`open_bytes`)."""
    with open_bytes(path, field) as fh:
        return fh.read()


def read_text(path: Path, field: str = STRUCTURE) -> str:
    """File content as UTF-8 text (undecodable bytes replaced, a leading BOM dropped)."""
    return read_bytes(path, field).decode("utf-8", errors="replace").removeprefix("\ufeff")


class DepthScan:
    r"""Deepest nesting of ``[``/``{`` in JSON bytes fed block by block, ignoring brackets inside strings.

    Escapes are neutralised first (``\\`` pairs, then ``\"``), so every remaining quote opens or
    closes a string; each block is scanned with numpy, carrying depth and string state. A block's
    trailing run of backslashes waits for the next block, where it ends, so escapes never straddle two.
    """

    def __init__(self) -> None:
        self.depth = self.deepest = 0
        self.inside = False
        self._carry = b""

    def feed(self, data: bytes, *, final: bool = False) -> int:
        """Scan one more block (``final`` for the last); returns the deepest nesting so far."""
        data = self._carry + data
        kept = data if final else data.rstrip(b"\\")
        self._carry = data[len(kept):]
        clean = kept.replace(b"\\\\", b"__").replace(b'\\"', b"__")
        if not clean:
            return self.deepest
        arr = np.frombuffer(clean, np.uint8)
        quotes = np.cumsum(arr == 34, dtype=np.int32)  # '"'
        in_string = (quotes & 1).astype(bool) ^ self.inside
        step = ((arr == 91) | (arr == 123)).view(np.int8) - ((arr == 93) | (arr == 125)).view(np.int8)  # [{ ]}
        step[in_string] = 0
        running = self.depth + np.cumsum(step, dtype=np.int32)
        self.deepest, self.depth = max(self.deepest, int(running.max())), int(running[-1])
        self.inside = bool((quotes[-1] % 2 == 1) != self.inside)
        return self.deepest


def json_depth(raw: bytes, *, chunk: int = 1 << 24) -> int:
    """Deepest nesting of ``[``/``{`` in JSON bytes (no parsing); see :class:`DepthScan`."""
    scan = DepthScan()
    for start in range(0, len(raw), chunk):
        scan.feed(raw[start:start + chunk], final=start + chunk >= len(raw))
    return scan.deepest


def file_json_depth(path: Path, *, block: int = 1 << 20, field: str = TABLE) -> int:
    """Deepest nesting of a (gzipped) JSON file within the byte limit ``field``, read block by block."""
    scan = DepthScan()
    with open_bytes(path, field) as fh:
        while data := fh.read(block):
            scan.feed(data)
    return scan.feed(b"", final=True)
