"""Read every structure of a file or text: bounded bytes, the format from the table, a time budget, validation.

File and gzip sizes are checked before anything is tokenised; the parse and the validation run
inside a per-file time budget (:func:`crystalrep.limits.time_budget`, a watchdog that interrupts
Python code; long C calls are bounded by the pre-checks instead).
"""

from __future__ import annotations

import gzip
import importlib
import io
import zlib
from pathlib import Path

from pymatgen.core import Structure

from crystalrep.limits import Limits, OutOfTime, current_limits, env_name, time_budget
from crystalrep.structures.checks import effective_limits, validate_structure
from crystalrep.structures.errors import StructureError
from crystalrep.structures.formats import detect_format
from crystalrep.structures.parse import parse

_PARSERS = {"cif": ("pymatgen.io.cif",), "poscar": ("pymatgen.io.vasp",),
            "extxyz": ("ase.io.extxyz", "pymatgen.io.ase")}


def _too_big(what: str, size: int, limit: int, field: str) -> str:
    return f"{what} {size:,} bytes, above the limit of {limit:,} ({env_name(field)})"


def _read_text(path: Path, lim: Limits) -> str:
    """A file's text, read and gunzipped only up to the size limits."""
    try:
        if path.exists() and not path.is_file():
            raise StructureError(f"{path}: is not a regular file.")
        size = path.stat().st_size
        if size > lim.max_file_bytes:
            raise StructureError(f"{path}: {_too_big('the file has', size, lim.max_file_bytes, 'max_file_bytes')}.")
        with path.open("rb") as f:
            raw = f.read(lim.max_file_bytes + 1)
    except OSError as exc:
        raise StructureError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    return text_from_bytes(str(path), raw, limits=lim)


def text_from_bytes(name: str, raw: bytes, *, limits: Limits | None = None) -> str:
    """The text of an uploaded or read file: gunzipped if ``name`` ends in ``.gz``, within the limits.

    Raises:
        StructureError: If the bytes, or what they inflate to, exceed ``max_file_bytes``
            (or ``max_decompressed_bytes``), or the gzip stream is broken.
    """
    lim = limits if limits is not None else current_limits()
    if len(raw) > lim.max_file_bytes:
        raise StructureError(f"{name}: {_too_big('the file has', len(raw), lim.max_file_bytes, 'max_file_bytes')}.")
    if name.lower().endswith(".gz"):
        cap = min(lim.max_file_bytes, lim.max_decompressed_bytes)
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                raw = gz.read(cap + 1)  # never more than the limit in memory
        except (OSError, EOFError, zlib.error) as exc:
            raise StructureError(f"{name}: is not a valid gzip file.") from exc
        if len(raw) > cap:
            field = "max_file_bytes" if cap == lim.max_file_bytes else "max_decompressed_bytes"
            raise StructureError(f"{name}: inflates to more than {cap:,} bytes, the limit ({env_name(field)}).")
    return raw.decode("utf-8", errors="replace")


def _read(source: str | Path, text: str | None, fmt: str | None, lim: Limits, *, first: bool) -> list[Structure]:
    name = str(source)
    if text is None:
        text = _read_text(Path(source), lim)
    elif len(text) > lim.max_file_bytes:
        raise StructureError(f"{name}: {_too_big('the text has', len(text), lim.max_file_bytes, 'max_file_bytes')}.")
    if not text.strip():
        raise StructureError(f"{name}: the file is empty.")
    fmt = (fmt or detect_format(name, text)).lower()
    # Imports happen before the budget starts: an import stopped half-way can leave a module
    # broken for the rest of the process.
    for module in ("scipy.spatial", *_PARSERS.get(fmt, ())):
        importlib.import_module(module)
    try:
        with time_budget(lim.parse_seconds):
            structures = parse(text, fmt, name, lim, first=first)
            if not structures:
                raise StructureError(f"{name}: no structure could be read.")
            return [validate_structure(s, source=name, limits=lim) for s in structures]
    except OutOfTime:
        raise StructureError(f"{name}: reading took longer than the limit of {lim.parse_seconds:g} s "
                             f"({env_name('parse_seconds')}).") from None


def read_structures(
    source: str | Path,
    *,
    text: str | None = None,
    fmt: str | None = None,
    max_atoms: int | None = None,
    limits: Limits | None = None,
) -> list[Structure]:
    """Read every structure of a file or text (each CIF data block, each extxyz frame).

    Args:
        source: A path, or a name used in messages when ``text`` is given.
        text: File content; when omitted, ``source`` is read from disk (``.gz`` allowed).
        fmt: One of ``cif``, ``poscar``, ``json``, ``extxyz``; guessed when omitted.
        max_atoms: Largest number of sites accepted per structure, listed or after symmetry
            (overrides ``limits.max_sites`` and ``limits.max_atoms``).
        limits: The bounds to apply (default: :func:`crystalrep.limits.current_limits`).

    Returns:
        Validated structures, in file order.

    Raises:
        StructureError: If nothing valid can be read or a limit is broken; one sentence.
        ValueError: If a ``CRYSTALREP_LIMIT_*`` environment variable is malformed.
    """
    return _read(source, text, fmt, effective_limits(limits, max_atoms), first=False)


def read_structure(
    source: str | Path,
    *,
    text: str | None = None,
    fmt: str | None = None,
    max_atoms: int | None = None,
    limits: Limits | None = None,
) -> Structure:
    """Read exactly one structure: the first of a file that holds several (the rest is not parsed).

    Arguments and errors as :func:`read_structures`.
    """
    return _read(source, text, fmt, effective_limits(limits, max_atoms), first=True)[0]
