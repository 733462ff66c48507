"""Parse and validate one crystal structure from CIF, POSCAR, pymatgen JSON or extxyz.

Every failure is a :class:`StructureError` whose message is one sentence naming the source
and the reason. pymatgen's parser warnings are captured and logged, never shown raw.
"""

from __future__ import annotations

import gzip
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Structure

if TYPE_CHECKING:
    from pymatgen.io.cif import CifBlock, CifParser

log = logging.getLogger(__name__)

MAX_ATOMS = 500
MIN_DISTANCE = 0.5
FORMATS = ("cif", "poscar", "json", "extxyz")


class StructureError(ValueError):
    """A structure could not be read or is not a valid periodic crystal."""


@contextmanager
def _quiet(captured: list[str]) -> Iterator[None]:
    """Collect pymatgen warnings instead of printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        msg = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        if msg:
            captured.append(msg)
            log.debug("parser warning: %s", msg)


def detect_format(name: str, text: str | None = None) -> str:
    """Guess the format from a file name, falling back to the content."""
    lower = name.lower().removesuffix(".gz")
    if lower.endswith((".cif", ".mcif")):
        return "cif"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith((".xyz", ".extxyz")):
        return "extxyz"
    base = Path(lower).name
    if lower.endswith(".vasp") or base.startswith(("poscar", "contcar")):
        return "poscar"
    if text is not None:
        head = text.lstrip()[:2000]
        if head.startswith("{"):
            return "json"
        if head.startswith("data_") or "_cell_length_a" in head or "\ndata_" in head:
            return "cif"
        if "Lattice=" in head.split("\n", 2)[1] if head.count("\n") >= 1 else False:
            return "extxyz"
        return "poscar"
    raise StructureError(f"{name}: cannot tell the file format (use .cif, .json, .xyz or POSCAR).")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StructureError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if path.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise StructureError(f"{path}: is not a valid gzip file.") from exc
    return raw.decode("utf-8", errors="replace")


def _first_reason(captured: list[str], default: str) -> str:
    reasons = [c for c in captured if "unusual" not in c.lower()]
    return (reasons[0] if reasons else default).rstrip(".")


def _site_rows(block: CifBlock) -> int:
    """Rows of a tokenised block's atom-site loop (a single row is stored as a plain string)."""
    for key in ("_atom_site_fract_x", "_atom_site_Cartn_x"):
        value = block.data.get(key)
        if value is not None:
            return 1 if isinstance(value, str) else len(value)
    return 0


def _column(block: CifBlock, key: str) -> list[str]:
    value = block.data.get(key)
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _expanded_sites(parser: CifParser, block: CifBlock, n_sites: int, max_atoms: int) -> int:
    """Atoms after applying the block's symmetry operations, counted cheaply with numpy.

    Mirrors pymatgen's merging (images closer than 1e-4 in fractional coordinates are one site),
    so a cell is refused before pymatgen spends seconds to minutes building it. Returns
    ``n_sites`` whenever the estimate cannot be made; the full parse then decides.
    """
    from pymatgen.io.cif import str2float

    if "_atom_site_fract_x" not in block.data or parser.feature_flags.get("magcif"):
        return n_sites
    n_warnings = len(parser.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ops = parser.get_symops(block)
    del parser.warnings[n_warnings:]  # parse_structures repeats the same lookup and warnings
    if n_sites * len(ops) <= max_atoms:
        return n_sites
    try:
        frac = np.array([[str2float(v) for v in _column(block, f"_atom_site_fract_{a}")] for a in "xyz"]).T
        occupancy = np.array([str2float(v) for v in _column(block, "_atom_site_occupancy")] or [1.0] * len(frac))
    except (ValueError, TypeError):
        return n_sites
    if frac.shape != (n_sites, 3) or occupancy.shape != (n_sites,):
        return n_sites
    frac = frac[occupancy > 0]  # pymatgen drops empty sites
    rot = np.array([op.rotation_matrix for op in ops])
    shift = np.array([op.translation_vector for op in ops])
    images = np.mod(np.einsum("mij,nj->nmi", rot, frac) + shift, 1.0)  # (sites, ops, 3)
    kept: list[np.ndarray] = []
    count = 0
    for orbit in images:
        if kept and _close(orbit[0], np.concatenate(kept)).any():
            continue  # the same orbit as an earlier site (orbits are equal or disjoint)
        same = _close(orbit[:, None, :], orbit[None, :, :])
        unique = orbit[~np.triu(same, 1).any(axis=0)]
        kept.append(unique)
        count += len(unique)
    return count


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Whether fractional positions coincide under periodic boundaries (pymatgen's rule)."""
    diff = a - b
    return (np.abs(diff - np.round(diff)) < tol).all(axis=-1)


def _parse_cif(text: str, source: str, max_atoms: int = MAX_ATOMS) -> list[Structure]:
    from pymatgen.io.cif import CifFile, CifParser

    captured: list[str] = []
    # pymatgen's CIF reader raises many exception types on malformed text; all mean "unparseable".
    try:
        with _quiet(captured):
            blocks = list(CifFile.from_str(text).data.values())
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        raise StructureError(f"{source}: is not readable CIF ({_short(exc)}).") from exc
    structures: list[Structure] = []
    for block in blocks:
        n_sites = _site_rows(block)
        if n_sites == 0:
            continue  # metadata-only block (e.g. publication data), no structure to take
        # Tokenising takes ~0.1 s for 10,000 sites; building that cell takes pymatgen ~35 s.
        if n_sites > max_atoms:
            raise StructureError(f"{source}: {n_sites} atom sites exceed the limit of {max_atoms} per cell.")
        try:
            with _quiet(captured):
                parser = CifParser.from_str(str(block))
                n_atoms = _expanded_sites(parser, block, n_sites, max_atoms)
                if n_atoms <= max_atoms:
                    structures.extend(parser.parse_structures(primitive=False, on_error="raise"))
        except Exception as exc:  # noqa: BLE001 - third-party parser boundary
            captured.append(_short(exc))
            continue
        if n_atoms > max_atoms:
            raise StructureError(
                f"{source}: {n_atoms} atoms exceed the limit of {max_atoms} per cell "
                f"({n_sites} listed sites expanded by symmetry)."
            )
    if not structures:
        reason = _first_reason(captured, "it contains no atom sites") if blocks else "it contains no data block"
        raise StructureError(f"{source}: no structure could be read ({reason}).")
    return structures


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200].rstrip(".")


def _parse(text: str, fmt: str, source: str, max_atoms: int = MAX_ATOMS) -> list[Structure]:
    if fmt == "cif":
        return _parse_cif(text, source, max_atoms)
    captured: list[str] = []
    try:
        with _quiet(captured):
            if fmt == "json":
                data = json.loads(text)
                return [Structure.from_dict(d) for d in (data if isinstance(data, list) else [data])]
            if fmt == "poscar":
                from pymatgen.io.vasp import Poscar

                return [Poscar.from_str(text).structure]
            if fmt == "extxyz":
                import io

                from ase.io import read
                from pymatgen.io.ase import AseAtomsAdaptor

                atoms = read(io.StringIO(text), index=":", format="extxyz")
                return [AseAtomsAdaptor.get_structure(a) for a in atoms]
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        raise StructureError(f"{source}: is not readable {fmt.upper()} ({_short(exc)}).") from exc
    raise StructureError(f"{source}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def validate_structure(
    structure: Structure,
    *,
    source: str = "structure",
    max_atoms: int = MAX_ATOMS,
    min_distance: float = MIN_DISTANCE,
) -> Structure:
    """Check that a structure is a sane, ordered periodic crystal.

    Args:
        structure: The structure to check.
        source: Name used in error messages (file name, row id).
        max_atoms: Largest number of sites accepted.
        min_distance: Smallest interatomic distance accepted, in Å.

    Returns:
        The same structure.

    Raises:
        StructureError: One sentence naming the source and the reason.
    """
    n = len(structure)
    if n == 0:
        raise StructureError(f"{source}: the structure has no atoms.")
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.isfinite(matrix).all():
        raise StructureError(f"{source}: the lattice contains NaN or infinite values.")
    if not np.isfinite(structure.frac_coords).all():
        raise StructureError(f"{source}: atomic coordinates contain NaN or infinite values.")
    volume = float(abs(np.linalg.det(matrix)))
    if not volume > 1e-6:
        raise StructureError(f"{source}: the cell volume is zero (degenerate lattice).")
    if n > max_atoms:
        raise StructureError(f"{source}: {n} atoms exceed the limit of {max_atoms} per cell.")
    for idx, site in enumerate(structure):
        if not site.is_ordered:
            raise StructureError(
                f"{source}: site {idx} ({site.species.formula}) has partial occupancy; "
                "only ordered crystals are supported."
            )
        element = site.specie
        if not hasattr(element, "Z") or getattr(element, "Z", 0) <= 0:
            raise StructureError(f"{source}: site {idx} has no real element ({element}).")
    centre, neighbour, _, dist = structure.get_neighbor_list(r=min_distance, exclude_self=True)
    if len(dist):
        k = int(np.argmin(dist))
        raise StructureError(
            f"{source}: atoms {int(centre[k])} and {int(neighbour[k])} are only "
            f"{float(dist[k]):.3f} Å apart (minimum {min_distance} Å)."
        )
    return structure


def read_structures(
    source: str | Path,
    *,
    text: str | None = None,
    fmt: str | None = None,
    max_atoms: int = MAX_ATOMS,
) -> list[Structure]:
    """Read every structure of a file or text (each CIF data block, each extxyz frame).

    Args:
        source: A path, or a name used in messages when ``text`` is given.
        text: File content; when omitted, ``source`` is read from disk (``.gz`` allowed).
        fmt: One of ``cif``, ``poscar``, ``json``, ``extxyz``; guessed when omitted.
        max_atoms: Largest number of sites accepted per structure.

    Returns:
        Validated structures, in file order.

    Raises:
        StructureError: If nothing valid can be read; the first failure's reason is given.
    """
    name = str(source)
    if text is None:
        text = _read_text(Path(source))
    if not text.strip():
        raise StructureError(f"{name}: the file is empty.")
    fmt = (fmt or detect_format(name, text)).lower()
    structures = _parse(text, fmt, name, max_atoms)
    if not structures:
        raise StructureError(f"{name}: no structure could be read.")
    return [validate_structure(s, source=name, max_atoms=max_atoms) for s in structures]


def read_structure(
    source: str | Path,
    *,
    text: str | None = None,
    fmt: str | None = None,
    max_atoms: int = MAX_ATOMS,
) -> Structure:
    """Read exactly one structure (the first, when a file holds several)."""
    return read_structures(source, text=text, fmt=fmt, max_atoms=max_atoms)[0]
