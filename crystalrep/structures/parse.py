"""Parse a text in a known format into pymatgen structures, with each format's size checks first.

CIF goes through the block pre-checks (:mod:`~crystalrep.structures.cif`,
:mod:`~crystalrep.structures.symmetry`) before pymatgen builds a structure; JSON is checked for
depth, site count and cell before ``Structure.from_dict``; POSCAR and extxyz atom counts are read
from their count lines before pymatgen or ase parse them. Nothing here is validated yet
(:mod:`~crystalrep.structures.checks` does that).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import numpy as np
from pymatgen.core import Structure

from crystalrep.limits import Limits, cell_problem, env_name
from crystalrep.structures.cif import cell_matrix, cif_text, site_rows, structure_block, symop_rows
from crystalrep.structures.errors import StructureError, first_reason, quiet, short
from crystalrep.structures.formats import BY_NAME, FORMATS
from crystalrep.structures.symmetry import check_symmetry, symops


def _cif_reason(exc: BaseException) -> str:
    """The reason pymatgen gives for refusing a CIF, said plainly for a broken loop.

    A loop whose values do not fill its columns surfaces as whatever arithmetic or ``zip``
    error comes first.
    """
    if isinstance(exc, ZeroDivisionError) or re.search(r"not a multiple of|zip\(\) argument", str(exc)):
        return "a loop's values do not fill its columns"
    return short(exc)


def _parse_cif(text: str, source: str, lim: Limits, *, first: bool) -> list[Structure]:
    from pymatgen.io.cif import CifFile, CifParser

    text = cif_text(text, source, lim)
    captured: list[str] = []
    # pymatgen's CIF reader raises many exception types on malformed text; all mean "unparseable".
    try:
        with quiet(captured):
            blocks = list(CifFile.from_str(text).data.values())
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        raise StructureError(f"{source}: is not readable CIF ({_cif_reason(exc)}).") from exc
    structures: list[Structure] = []
    for block in blocks:
        if first and structures:
            break
        n_sites = site_rows(block)
        if n_sites == 0:
            continue  # metadata-only block (e.g. publication data), no structure to take
        # Tokenising takes ~0.1 s for 10,000 sites; building that cell takes pymatgen ~35 s.
        if n_sites > lim.max_sites:
            raise StructureError(f"{source}: {n_sites} atom sites exceed the limit of {lim.max_sites} per cell "
                                 f"({env_name('max_sites')}).")
        if (n_rows := symop_rows(block)) > lim.max_symops:
            raise StructureError(f"{source}: {n_rows:,} symmetry operations exceed the limit of {lim.max_symops} "
                                 f"({env_name('max_symops')}).")
        cell = cell_matrix(block, source, lim)
        if isinstance(cell, str):
            captured.append(cell)
            continue
        reduced = structure_block(block, source, lim)
        try:
            with quiet(captured):
                parser = CifParser.from_str(str(reduced))
                ops = symops(parser, block)
        except Exception as exc:  # noqa: BLE001 - third-party parser boundary
            captured.append(_cif_reason(exc))
            continue
        check_symmetry(ops, block, cell, source, lim)
        try:
            with quiet(captured):
                structures.extend(parser.parse_structures(primitive=False, on_error="raise"))
        except Exception as exc:  # noqa: BLE001 - third-party parser boundary
            captured.append(short(exc))
    if not structures:
        reason = first_reason(captured, "it contains no atom sites") if blocks else "it contains no data block"
        raise StructureError(f"{source}: no structure could be read ({reason}).")
    return structures


def _json_depth(data: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, without recursion; stops counting past ``limit``."""
    deepest, stack = 0, [(data, 1)]
    while stack and deepest <= limit:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _parse_json(text: str, source: str, lim: Limits, *, first: bool) -> list[Structure]:
    too_deep = (f"{source}: the JSON nests deeper than the limit of {lim.max_json_depth} levels "
                f"({env_name('max_json_depth')}).")
    try:
        data = json.loads(text)
    except RecursionError:
        raise StructureError(too_deep) from None
    if _json_depth(data, lim.max_json_depth) > lim.max_json_depth:
        raise StructureError(too_deep)
    out = []
    for item in (data if isinstance(data, list) else [data])[: 1 if first else None]:
        sites = item.get("sites") if isinstance(item, dict) else None
        lattice = item.get("lattice") if isinstance(item, dict) else None
        n_sites = len(sites) if isinstance(sites, list) else None
        if n_sites is not None and n_sites > lim.max_sites:
            raise StructureError(f"{source}: {n_sites} atoms exceed the limit of {lim.max_sites} per cell "
                                 f"({env_name('max_sites')}).")
        if isinstance(lattice, dict) and "matrix" in lattice:
            try:
                matrix = np.asarray(lattice["matrix"], dtype=float)
            except (TypeError, ValueError):
                matrix = None  # pymatgen refuses it below, in its own words
            if matrix is not None and (problem := cell_problem(matrix, n_sites, lim)):
                raise StructureError(f"{source}: {problem}.")
        out.append(Structure.from_dict(item))
    return out


def _is_count(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _declared_atoms(token: str) -> int:
    return int(token) if len(token) <= 12 else 10**12  # no 4,300-digit int conversion


def _check_counts(text: str, fmt: str, source: str, lim: Limits) -> None:
    """Refuse a POSCAR or extxyz whose declared atom counts exceed the site limit, before parsing."""
    over = f"exceed the limit of {lim.max_sites} per cell ({env_name('max_sites')})"
    if fmt == "poscar":
        for line in text.split("\n", 8)[5:7]:
            tokens = line.split()
            if tokens and all(_is_count(t) for t in tokens):
                if (total := sum(_declared_atoms(t) for t in tokens)) > lim.max_sites:
                    raise StructureError(f"{source}: {total} atoms {over}.")
                return
        return
    lines, k = text.split("\n"), 0
    while k < len(lines):
        head = lines[k].strip()
        if not _is_count(head):
            if head:
                return  # not a count line: ase reports the format error
            k += 1
            continue
        if (n := _declared_atoms(head)) > lim.max_sites:
            raise StructureError(f"{source}: the frame at line {k + 1} declares {n} atoms, which {over}.")
        k += n + 2


def parse(text: str, fmt: str, source: str, lim: Limits, *, first: bool) -> list[Structure]:
    """Every structure of a text (only the first one when ``first``), not yet validated.

    Raises:
        StructureError: For a format that is not one of :data:`FORMATS` (a table or an archive
            names the importer instead), or text that format cannot hold.
    """
    if fmt in BY_NAME and fmt not in FORMATS:
        raise StructureError(f"{source}: is {BY_NAME[fmt].description}, not a structure file; import it as a "
                             "dataset (crystalrep data import).")
    if fmt not in FORMATS:
        raise StructureError(f"{source}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if fmt == "cif":
        return _parse_cif(text, source, lim, first=first)
    captured: list[str] = []
    try:
        with quiet(captured):
            if fmt == "json":
                return _parse_json(text, source, lim, first=first)
            _check_counts(text, fmt, source, lim)
            if fmt == "poscar":
                from pymatgen.io.vasp import Poscar

                return [Poscar.from_str(text).structure]
            from ase.io import read
            from pymatgen.io.ase import AseAtomsAdaptor

            frames = read(io.StringIO(text), index=slice(0, 1 if first else None), format="extxyz")
            return [AseAtomsAdaptor.get_structure(a) for a in frames]
    except StructureError:
        raise
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        raise StructureError(f"{source}: is not readable {fmt.upper()} ({short(exc)}).") from exc
