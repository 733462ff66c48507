"""The one table of input formats: file-name suffixes and a content sniff -> the reader that takes a file.

Every entry point asks this table: :func:`~crystalrep.structures.read_structures` (one file's
crystals), the importers (which reader imports a path or an upload, and which files of a folder
are structures) and the upload query of the Retrieval page. The name decides first, looking
through ``.gz`` (``x.cif.gz`` is CIF); the content decides when the name says nothing
(``Si.txt``), and refines the one ambiguous suffix, ``.json``, which holds either pymatgen
structure dicts or a matbench table. ``.xyz`` and ``.extxyz`` are read alike (a plain XYZ frame
has no cell and is refused as such). POSCAR has no signature of its own: it is the fallback for
text that nothing else claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from crystalrep.structures.errors import StructureError

SNIFF_CHARS = 4096  # how much of a file the content sniff looks at


@dataclass(frozen=True)
class Format:
    """One input format, a row of :data:`TABLE`.

    Args:
        name: The format's name, also the key of the importers' reader table.
        suffixes: File-name suffixes, lower case, ``.gz`` excluded.
        stems: Lower-case starts of a file name that name the format (``POSCAR``, ``CONTCAR``).
        structure: Whether :func:`~crystalrep.structures.read_structures` parses it (crystals per
            file, data block or frame); tables and archives are imported as datasets instead.
        description: A few words for messages.
    """

    name: str
    suffixes: tuple[str, ...] = ()
    stems: tuple[str, ...] = ()
    structure: bool = True
    description: str = ""


TABLE: tuple[Format, ...] = (
    Format("cif", (".cif", ".mcif"), description="a CIF file"),
    Format("poscar", (".vasp", ".poscar"), ("poscar", "contcar"), description="a POSCAR file"),
    Format("json", (".json",), description="pymatgen structure JSON"),
    Format("matbench", structure=False, description="a matbench table (JSON with columns and data)"),
    Format("extxyz", (".xyz", ".extxyz"), description="an extended XYZ file"),
    Format("csv", (".csv",), structure=False, description="a CSV table"),
    Format("zip", (".zip",), structure=False, description="a zip archive"),
)
BY_NAME = {f.name: f for f in TABLE}
FORMATS = tuple(f.name for f in TABLE if f.structure)  # what read_structures parses
_SUFFIXES = {suffix: f.name for f in TABLE for suffix in f.suffixes}
_STEMS = tuple((stem, f.name) for f in TABLE for stem in f.stems)
_MATBENCH = re.compile(r'"columns"\s*:\s*\[')  # pandas "split" JSON; a structure dict has no such key
_ZIP_MAGIC = ("PK\x03\x04", "PK\x05\x06")  # a local file header; an empty archive's end record


def _base(name: str) -> str:
    """The file name without folders and ``.gz``, lower case."""
    return PurePosixPath(name.replace("\\", "/")).name.lower().removesuffix(".gz")


def format_of_name(name: str) -> str | None:
    """The format a file name says (``.gz`` looked through), or None when the name says nothing."""
    base = _base(name)
    for stem, fmt in _STEMS:
        if base.startswith(stem):
            return fmt
    return _SUFFIXES.get(PurePosixPath(base).suffix)


def structure_format(name: str) -> str | None:
    """The format of a structure file's name (one of :data:`FORMATS`), or None (tables, archives, others)."""
    fmt = format_of_name(name)
    return fmt if fmt is not None and BY_NAME[fmt].structure else None


def strip_suffix(name: str) -> str:
    """A path without ``.gz`` and a structure suffix: ``a/mp-1.cif.gz`` -> ``a/mp-1``; others keep theirs."""
    path = PurePosixPath(name.removesuffix(".gz").removesuffix(".GZ"))
    return path.with_suffix("").as_posix() if _SUFFIXES.get(path.suffix.lower()) in FORMATS else path.as_posix()


def needs_content(name: str) -> bool:
    """Whether :func:`detect` needs the file's first :data:`SNIFF_CHARS` characters to decide."""
    return format_of_name(name) in (None, "json")


def _is_count(line: str) -> bool:
    token = line.strip()
    return token.isascii() and token.isdigit()


def _csv_header(line: str) -> bool:
    fields = [f.strip().strip("\"'").lower() for f in line.split(",")]
    return len(fields) > 1 and "cif" in fields


def sniff(head: str) -> str | None:
    """The format a file's first characters show, or None when they show none (POSCAR, garbage).

    Zip archives by their magic bytes; JSON by its opening bracket (matbench when it has a
    ``"columns"`` list); CSV by a header with a ``cif`` column; CIF by ``data_`` or a cell item;
    extxyz by an atom-count line followed by ``Lattice=`` or by an atom line.
    """
    text = head[:SNIFF_CHARS].removeprefix("\ufeff")
    if text.startswith(_ZIP_MAGIC):
        return "zip"
    body = text.lstrip()
    if body.startswith(("{", "[")):
        return "matbench" if body.startswith("{") and _MATBENCH.search(body) else "json"
    lines = body.split("\n", 3)
    if _csv_header(lines[0]):  # before CIF: the cells of such a table are CIF text
        return "csv"
    if body.startswith("data_") or "\ndata_" in body or "_cell_length_a" in body:
        return "cif"
    if len(lines) >= 2 and _is_count(lines[0]):
        third = lines[2].split() if len(lines) >= 3 else []
        if "Lattice=" in lines[1] or (third and third[0][:1].isalpha()):
            return "extxyz"
    return None


def detect(name: str, head: str | None = None) -> str | None:
    """A file's format from its name, then (when given and needed) its first characters.

    Returns:
        A name of :data:`TABLE`, or None when neither the name nor the content says.
    """
    fmt = format_of_name(name)
    if head is None or not needs_content(name):
        return fmt
    seen = sniff(head)
    if fmt == "json":
        return "matbench" if seen == "matbench" else "json"
    return seen


def detect_format(name: str, text: str | None = None) -> str:
    """The format of a structure file or text: the name first, then the content; POSCAR if nothing else fits.

    Raises:
        StructureError: If there is no content and the name says nothing.
    """
    fmt = detect(name, text)
    if fmt is not None:
        return fmt
    if text is not None:
        return "poscar"
    raise StructureError(f"{name}: cannot tell the file format (use .cif, .json, .xyz or POSCAR).")
