"""Unpacking an uploaded zip within the limits, member by member.

Before anything is unpacked, every member is checked with what the archive declares: the member
count, the total size against ``max_decompressed_bytes``, the compression ratio (a zip bomb
deflates 1000:1 and more), encryption and paths leaving the archive; a bad member is a rejected
row, never the end of the upload. Members are then streamed to disk and stop at the limit,
whatever their headers claimed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

from crystalrep.datasets import DatasetError
from crystalrep.importers.bounded import (
    MAX_COMPRESSION_RATIO,
    RATIO_FLOOR,
    clip,
    limits,
    refusal,
    shown,
)
from crystalrep.importers.rows import Rejected

MAX_ZIP_MEMBERS = 20_000


def _safe_member(name: str) -> PurePosixPath | None:
    """The relative path of a zip member, or None if it would leave the target folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return path


def _zip_members(filename: str, archive: zipfile.ZipFile) -> tuple[list[tuple[zipfile.ZipInfo, PurePosixPath]],
                                                                   list[Rejected]]:
    """The members worth unpacking, after every check that needs no decompression."""
    lim = limits()
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise DatasetError(clip(f"{shown(filename)}: holds {len(members):,} files; the limit is {MAX_ZIP_MEMBERS:,}."))
    if sum(m.file_size for m in members) > lim.max_decompressed_bytes:
        raise refusal(filename, "unpacks to more bytes than allowed", "max_decompressed_bytes")
    keep, rejected = [], []
    for member in members:
        rel = _safe_member(member.filename)
        if rel is None:
            rejected.append(Rejected(clip(member.filename, 80), "its path leaves the archive folder (path traversal); skipped."))
        elif not rel.parts or rel.parts[0] == "__MACOSX" or any(p.startswith(".") for p in rel.parts):
            continue
        elif member.flag_bits & 0x1:
            rejected.append(Rejected(clip(member.filename, 80), "it is encrypted; encrypted archive members are not supported."))
        elif member.file_size > RATIO_FLOOR and member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
            rejected.append(Rejected(clip(member.filename, 80), f"it is compressed more than {MAX_COMPRESSION_RATIO}:1 "
                                                               "(a zip bomb, not structure files); skipped."))
        else:
            keep.append((member, rel))
    return keep, rejected


def _unpack(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Stream one member to ``target``, stopping past ``budget`` bytes; returns the bytes written."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(member) as src, open(target, "wb") as dst:
        while block := src.read(1 << 20):
            written += len(block)
            if written > budget:
                raise refusal(member.filename, "unpacks to more bytes than allowed", "max_decompressed_bytes")
            dst.write(block)
    return written


def extract_zip(filename: str, data: bytes, dest: Path) -> tuple[Path, list[Rejected]]:
    """Unpack an uploaded zip into ``dest``; returns the file or folder to import and rejected members.

    Raises:
        DatasetError: If the archive is unreadable, over a limit as a whole, or holds no usable file.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise DatasetError(clip(f"{shown(filename)}: is not a valid zip archive.")) from exc
    with archive:
        members, rejected = _zip_members(filename, archive)
        budget = limits().max_decompressed_bytes
        for member, rel in members:
            try:
                budget -= _unpack(archive, member, dest.joinpath(*rel.parts), budget)
            except DatasetError:
                raise
            # zipfile raises these on damaged members (CRC, unknown method, lying sizes); that member only
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError, EOFError, ValueError) as exc:
                rejected.append(Rejected(clip(member.filename, 80), clip(f"the archive member cannot be unpacked ({exc}).")))
    files = [p for p in dest.rglob("*") if p.is_file()] if dest.is_dir() else []
    if not files:
        raise DatasetError(clip(f"{shown(filename)}: holds no usable files"
                                + (f" ({rejected[0].reason.rstrip('.')})." if rejected else ".")))
    root = dest
    while len(entries := list(root.iterdir())) == 1 and entries[0].is_dir():
        root = entries[0]
    return (files[0] if len(files) == 1 else root), rejected
