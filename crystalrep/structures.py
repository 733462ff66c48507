"""Parse and validate one crystal structure from CIF, POSCAR, pymatgen JSON or extxyz.

Every failure is a :class:`StructureError`: one printable sentence naming the source and the
reason. Every bound comes from :mod:`crystalrep.limits` and is checked before the work it
bounds: file and line sizes before tokenising; cell numbers, site and symmetry counts before
pymatgen builds a structure; the cell's shape before any neighbour search. A time budget per
file stops whatever is left. pymatgen's parser warnings are captured and logged, never shown.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import logging
import re
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.core import Structure

from crystalrep.limits import (
    Limits,
    OutOfTime,
    cell_problem,
    clean_message,
    current_limits,
    env_name,
    time_budget,
)

if TYPE_CHECKING:
    from pymatgen.io.cif import CifBlock

log = logging.getLogger(__name__)

MAX_ATOMS = Limits().max_atoms  # the defaults, kept for callers that name them
MIN_DISTANCE = Limits().min_distance
FORMATS = ("cif", "poscar", "json", "extxyz")
_CELL_KEYS = ("_cell_length_a", "_cell_length_b", "_cell_length_c",
              "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")
_MAX_WARNINGS = 20  # parser warnings kept per file; the first one is the reason given
_STRUCTURE_KEYS = ("_cell", "_symmetry", "_space_group", "_atom_site", "_atom_type", "_chemical_formula",
                   "_parent_space_group", "_magnetic")  # what pymatgen's structure parse reads
_SYMOPS: dict[tuple, tuple] = {}  # symmetry fields of a block -> (operations, warnings, notes)
_SYMOPS_LOCK = threading.Lock()
_PARSERS = {"cif": ("pymatgen.io.cif",), "poscar": ("pymatgen.io.vasp",),
            "extxyz": ("ase.io.extxyz", "pymatgen.io.ase")}
_SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz",
               "_space_group_symop_magn_operation_xyz")


class StructureError(ValueError):
    """A structure could not be read or is not a valid periodic crystal.

    The message is cleaned on construction: one printable line of at most
    ``Limits.max_message_chars`` characters, whatever text a third-party parser passed on.
    """

    def __init__(self, message: str) -> None:
        try:
            limit = current_limits().max_message_chars
        except ValueError:  # a malformed override must not hide the error being raised
            limit = Limits().max_message_chars
        super().__init__(clean_message(str(message), limit))


@contextmanager
def _quiet(captured: list[str]) -> Iterator[None]:
    """Collect pymatgen's first warnings instead of printing them (a broken CIF can raise 10⁵)."""

    def keep(message: Warning | str, *_: object, **__: object) -> None:
        captured.append(_short(message))
        log.debug("parser warning: %s", captured[-1])
        if len(captured) >= _MAX_WARNINGS:
            warnings.simplefilter("ignore")  # the rest cost time and say nothing new

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = keep
        yield


def _short(text: object) -> str:
    """Third-party text as a short clause: one line, printable, at most 150 characters."""
    text = str(text) if not isinstance(text, BaseException) else (str(text) or type(text).__name__)
    return clean_message(text, 150).rstrip(".")


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


def _limits(limits: Limits | None, max_atoms: int | None) -> Limits:
    """The limits in force: ``limits`` or the environment's; ``max_atoms`` caps sites and atoms."""
    lim = limits if limits is not None else current_limits()
    return lim if max_atoms is None else lim.replace(max_atoms=max_atoms, max_sites=max_atoms)


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


def _first_reason(captured: list[str], default: str) -> str:
    reasons = [c for c in captured if "unusual" not in c.lower()]
    return (reasons[0] if reasons else default).rstrip(".")


def _column(block: CifBlock, key: str) -> list[str]:
    value = block.data.get(key)
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _site_rows(block: CifBlock) -> int:
    """Rows of a tokenised block's atom-site loop (a single row is stored as a plain string)."""
    return max(len(_column(block, "_atom_site_fract_x")), len(_column(block, "_atom_site_Cartn_x")))


def _cif_text(text: str, source: str, lim: Limits) -> str:
    """The text without whitespace-only lines, every line within the length limit.

    pymatgen drops blank lines too, but only after splitting blocks with a regex that is
    quadratic in a run of blank lines (40,000 of them take 4 s in C, beyond any time budget).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    longest = max(map(len, lines), default=0)
    if longest > lim.max_cif_line_chars:
        raise StructureError(f"{source}: a line of {longest:,} characters exceeds the limit of "
                             f"{lim.max_cif_line_chars:,} ({env_name('max_cif_line_chars')}).")
    return "\n".join(lines)


def _structure_block(block: CifBlock, source: str, lim: Limits) -> CifBlock:
    """The block with only the items pymatgen's structure parse reads, each loop within the limits.

    The block is written out again for a parser of its own: reflection or geometry tables can be
    most of a CIF, and pymatgen's writer takes time quadratic in a loop's rows.
    """
    from pymatgen.io.cif import CifBlock

    data = {k: v for k, v in block.data.items() if k.lower().startswith(_STRUCTURE_KEYS)}
    rows = max((len(v) for v in data.values() if not isinstance(v, str)), default=0)
    if rows > max(lim.max_sites, lim.max_symops):
        raise StructureError(f"{source}: a loop of {rows:,} rows exceeds the limit of {lim.max_sites} sites "
                             f"({env_name('max_sites')}).")
    loops = [[k for k in loop if k in data] for loop in block.loops]
    return CifBlock(data, [loop for loop in loops if loop], block.header)


def _cell_matrix(block: CifBlock, source: str, lim: Limits) -> np.ndarray | str | None:
    """The block's cell as a matrix, checked against the limits before pymatgen sees it.

    Returns None when a parameter is missing (pymatgen may then fall back on the crystal
    system; the built lattice is checked later) and the reason when the numbers are not a
    cell; raises when they are one beyond a limit.
    """
    from pymatgen.io.cif import str2float

    values = []
    for key in _CELL_KEYS:
        if key not in block.data:
            return None
        try:
            values.append(float(str2float(block.data[key])))
        except (ValueError, TypeError):
            return f"{key} {_short(block.data[key])[:40]!r} is not a number"
    lengths, angles = np.array(values[:3]), np.array(values[3:])
    if not np.isfinite(values).all():
        return "the cell parameters contain NaN or infinite values"
    if (lengths <= 0).any():
        return f"cell lengths must be positive, not a = {lengths[0]:.4g}, b = {lengths[1]:.4g}, c = {lengths[2]:.4g} Å"
    if ((angles <= 0) | (angles >= 180)).any():
        return "cell angles must lie strictly between 0° and 180°"
    if lengths.max() > lim.max_cell_length or lengths.min() < lim.min_cell_length:
        raise StructureError(f"{source}: {cell_problem(np.diag(lengths), None, lim)}.")  # names the edge
    ca, cb, cg = np.cos(np.radians(angles))
    sg = np.sin(np.radians(angles[2]))
    cy = (ca - cb * cg) / sg
    cz2 = 1.0 - cb**2 - cy**2
    if not cz2 > 1e-12:
        return f"the cell angles {angles[0]:g}°, {angles[1]:g}°, {angles[2]:g}° do not form a three-dimensional cell"
    matrix = np.array([[1.0, 0, 0], [cg, sg, 0], [cb, cy, np.sqrt(cz2)]]) * lengths[:, None]
    if problem := cell_problem(matrix, None, lim):
        raise StructureError(f"{source}: {problem}.")
    return matrix


def _site_fractions(block: CifBlock, n_sites: int, source: str, lim: Limits) -> np.ndarray | None:
    """Fractional coordinates of the sites pymatgen keeps (occupancy > 0), or None if unreadable."""
    from pymatgen.io.cif import str2float

    try:
        frac = np.array([[str2float(v) for v in _column(block, f"_atom_site_fract_{a}")] for a in "xyz"], float).T
        occupancy = np.array([str2float(v) for v in _column(block, "_atom_site_occupancy")] or [1.0] * len(frac), float)
    except (ValueError, TypeError):
        return None
    if frac.shape != (n_sites, 3) or occupancy.shape != (n_sites,):
        return None
    if not np.isfinite(frac).all():
        raise StructureError(f"{source}: atom site coordinates contain NaN or infinite values.")
    if np.abs(frac).max(initial=0) > lim.max_fractional_coordinate:
        raise StructureError(f"{source}: a fractional coordinate of {np.abs(frac).max():.4g} exceeds the limit of "
                             f"{lim.max_fractional_coordinate:g} ({env_name('max_fractional_coordinate')}).")
    return frac[occupancy > 0]


def _symop_rows(block: CifBlock) -> int:
    """Symmetry operations listed in a block (magnetic ones times their centrings), uncounted by pymatgen."""
    rows: dict[str, int] = {}
    for key, value in block.data.items():
        name = key.replace(".", "_").rstrip("_")
        rows[name] = max(rows.get(name, 0), 1 if isinstance(value, str) else len(value))
    return max(rows.get(k, 0) for k in _SYMOP_KEYS) * max(1, rows.get("_space_group_symop_magn_centering_xyz", 0))


def _symops(parser: Any, block: CifBlock) -> list[Any]:  # a CifParser: its attributes are untyped
    """The operations pymatgen will apply, looked up once per distinct symmetry description.

    pymatgen's parse would look them up again, and for a CIF that names only its space group
    that rebuilds the group from generators (0.5 s for Fm-3m; pymatgen caches only live
    groups). The parser is handed the same operations and warnings instead.
    """
    from pymatgen.io.cif import CifBlock

    noted_list: list[str] = parser.warnings
    magnetic = bool(parser.feature_flags.get("magcif"))
    key = None if magnetic else tuple(sorted(
        (k, v if isinstance(v, str) else tuple(v)) for k, v in block.data.items() if "symm" in k or "space_group" in k))
    with _SYMOPS_LOCK:
        found = _SYMOPS.get(key) if key is not None else None
    if found is None:
        n_noted = len(noted_list)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ops: list[Any]
            if magnetic:  # the magnetic lookup needs the sanitised block
                ops = parser.get_magsymops(CifBlock(next(iter(parser.as_dict().values())), [], "sanitised"))
            else:
                ops = parser.get_symops(block)
        found = (tuple(ops), tuple(str(w.message) for w in caught), tuple(noted_list[n_noted:]))
        del noted_list[n_noted:]
        if key is not None:
            with _SYMOPS_LOCK:
                _SYMOPS[key] = found
                while len(_SYMOPS) > 256:
                    _SYMOPS.pop(next(iter(_SYMOPS)))
    ops, messages, noted = found

    def again(_data: CifBlock) -> list[Any]:
        for message in messages:
            warnings.warn(message, stacklevel=2)
        noted_list.extend(noted)
        return list(ops)

    setattr(parser, "get_magsymops" if magnetic else "get_symops", again)
    return list(ops)


def _expanded_sites(ops: list[Any], frac: np.ndarray) -> int:
    """An upper bound on the atoms pymatgen makes from these sites, counted with numpy.

    Mirrors pymatgen's merging (a site that an operation maps onto an earlier site joins it;
    images closer than 1e-4 in fractional coordinates are one atom), so that a cell is refused
    before pymatgen spends seconds to minutes building it. The work is bounded by
    ``max_site_operations``, checked first.
    """
    rot = np.array([op.rotation_matrix for op in ops], dtype=float)
    shift = np.array([op.translation_vector for op in ops], dtype=float)
    kept = np.empty((0, 3))
    count = 0
    for site in frac:
        images = np.mod(rot @ site + shift, 1.0)  # (ops, 3)
        if len(kept) and _close(images[:, None, :], kept[None, :, :]).any():
            continue
        count += int((~np.triu(_close(images[:, None, :], images[None, :, :]), 1).any(axis=0)).sum())
        kept = np.vstack([kept, site])
    return count


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Whether fractional positions coincide under periodic boundaries (pymatgen's rule)."""
    diff = a - b
    return (np.abs(diff - np.round(diff)) < tol).all(axis=-1)


def _check_symmetry(ops: list[Any], block: CifBlock, cell: np.ndarray | None, source: str, lim: Limits) -> None:
    """Refuse a block whose symmetry expansion would break a limit, before pymatgen expands it."""
    n_sites, n_ops = _site_rows(block), len(ops)
    if n_ops > lim.max_symops:
        raise StructureError(f"{source}: {n_ops} symmetry operations exceed the limit of {lim.max_symops} "
                             f"({env_name('max_symops')}).")
    if n_sites * n_ops > lim.max_site_operations:
        raise StructureError(f"{source}: {n_sites} listed sites times {n_ops} symmetry operations exceed the limit "
                             f"of {lim.max_site_operations:,} ({env_name('max_site_operations')}).")
    frac = _site_fractions(block, n_sites, source, lim)
    if frac is None:
        return  # unreadable coordinates: pymatgen refuses the block itself
    n_atoms = _expanded_sites(ops, frac)
    if n_atoms > lim.max_atoms:
        raise StructureError(f"{source}: {n_atoms} atoms exceed the limit of {lim.max_atoms} per cell "
                             f"({n_sites} listed sites expanded by symmetry; {env_name('max_atoms')}).")
    problem = cell_problem(cell, n_atoms, lim) if cell is not None and n_atoms else None
    if problem is not None:
        raise StructureError(f"{source}: {problem}.")


def _cif_reason(exc: BaseException) -> str:
    """The reason pymatgen gives for refusing a CIF, said plainly for a broken loop.

    A loop whose values do not fill its columns surfaces as whatever arithmetic or ``zip``
    error comes first.
    """
    if isinstance(exc, ZeroDivisionError) or re.search(r"not a multiple of|zip\(\) argument", str(exc)):
        return "a loop's values do not fill its columns"
    return _short(exc)


def _parse_cif(text: str, source: str, lim: Limits, *, first: bool) -> list[Structure]:
    from pymatgen.io.cif import CifFile, CifParser

    text = _cif_text(text, source, lim)
    captured: list[str] = []
    # pymatgen's CIF reader raises many exception types on malformed text; all mean "unparseable".
    try:
        with _quiet(captured):
            blocks = list(CifFile.from_str(text).data.values())
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        raise StructureError(f"{source}: is not readable CIF ({_cif_reason(exc)}).") from exc
    structures: list[Structure] = []
    for block in blocks:
        if first and structures:
            break
        n_sites = _site_rows(block)
        if n_sites == 0:
            continue  # metadata-only block (e.g. publication data), no structure to take
        # Tokenising takes ~0.1 s for 10,000 sites; building that cell takes pymatgen ~35 s.
        if n_sites > lim.max_sites:
            raise StructureError(f"{source}: {n_sites} atom sites exceed the limit of {lim.max_sites} per cell "
                                 f"({env_name('max_sites')}).")
        if (n_rows := _symop_rows(block)) > lim.max_symops:
            raise StructureError(f"{source}: {n_rows:,} symmetry operations exceed the limit of {lim.max_symops} "
                                 f"({env_name('max_symops')}).")
        cell = _cell_matrix(block, source, lim)
        if isinstance(cell, str):
            captured.append(cell)
            continue
        reduced = _structure_block(block, source, lim)
        try:
            with _quiet(captured):
                parser = CifParser.from_str(str(reduced))
                ops = _symops(parser, block)
        except Exception as exc:  # noqa: BLE001 - third-party parser boundary
            captured.append(_cif_reason(exc))
            continue
        _check_symmetry(ops, block, cell, source, lim)
        try:
            with _quiet(captured):
                structures.extend(parser.parse_structures(primitive=False, on_error="raise"))
        except Exception as exc:  # noqa: BLE001 - third-party parser boundary
            captured.append(_short(exc))
    if not structures:
        reason = _first_reason(captured, "it contains no atom sites") if blocks else "it contains no data block"
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


def _parse(text: str, fmt: str, source: str, lim: Limits, *, first: bool) -> list[Structure]:
    """Every structure of a text (only the first one when ``first``), not yet validated."""
    if fmt == "cif":
        return _parse_cif(text, source, lim, first=first)
    if fmt not in FORMATS:
        raise StructureError(f"{source}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    captured: list[str] = []
    try:
        with _quiet(captured):
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
        raise StructureError(f"{source}: is not readable {fmt.upper()} ({_short(exc)}).") from exc


def _image_tree(points: np.ndarray, reduced: np.ndarray, radius: float) -> tuple[Any, int, np.ndarray]:
    """A k-d tree over every periodic image that can lie within ``radius`` of a point.

    Returns the tree (atom-major: image ``k`` is atom ``k // n_shifts``), the number of shifts,
    and each point's own index in the tree.
    """
    from scipy.spatial import cKDTree

    heights = 1.0 / np.linalg.norm(np.linalg.inv(reduced), axis=0)
    # A shift s along axis i can bring a point within r only if (|s| - 1) * height_i <= r.
    reach = (np.floor(radius / heights) + 1).astype(int)
    shifts = np.stack(np.meshgrid(*(np.arange(-k, k + 1) for k in reach), indexing="ij"), -1).reshape(-1, 3)
    tree = cKDTree((points[:, None, :] + (shifts @ reduced)[None, :, :]).reshape(-1, 3))
    own = np.arange(len(points)) * len(shifts) + int(np.flatnonzero(~shifts.any(axis=1))[0])
    return tree, len(shifts), own


def _check_neighbours(matrix: np.ndarray, frac: np.ndarray, source: str, lim: Limits) -> None:
    """Minimum distance and neighbour count, on periodic images of an LLL-reduced cell.

    pymatgen's own search allocates a grid over the whole cell (215 GB for 500 atoms in a
    1,000 Å cell at 0.5 Å) and vesin imports torch; here the images needed are few because a
    reduced cell is nearly orthogonal, and the cell's volume per atom bounds how many there are.
    """
    from pymatgen.core import Lattice

    reduced = Lattice(matrix).lll_matrix
    points = np.mod(np.mod(frac, 1.0) @ matrix @ np.linalg.inv(reduced), 1.0) @ reduced
    probe = max(lim.min_distance, 1.5)  # nearest distances up to here are found exactly
    tree, n_shifts, own = _image_tree(points, reduced, probe)
    dist, idx = tree.query(points, k=2)
    partner = np.where(idx[:, 0] == own, idx[:, 1], idx[:, 0])  # an exact duplicate may come first
    a = int(np.argmin(dist[:, 1]))
    nearest = min(float(dist[a, 1]), probe)
    if nearest < lim.min_distance:
        b = int(partner[a]) // n_shifts
        pair = f"atom {a} is only {nearest:.3f} Å from its own periodic image" if a == b else \
            f"atoms {a} and {b} are only {nearest:.3f} Å apart"
        raise StructureError(f"{source}: {pair} (minimum {lim.min_distance:g} Å).")
    # Balls of radius nearest/2 around the points within r of an atom are disjoint and inside a
    # ball of radius r + nearest/2, so their count is bounded by a volume ratio: often no count needed.
    if ((lim.neighbour_radius + nearest / 2) / (nearest / 2)) ** 3 - 1 <= lim.max_neighbours_per_site:
        return
    tree, _, _ = _image_tree(points, reduced, lim.neighbour_radius)
    counts = tree.query_ball_point(points, r=lim.neighbour_radius, return_length=True) - 1
    worst = int(np.argmax(counts))
    if counts[worst] > lim.max_neighbours_per_site:
        raise StructureError(f"{source}: atom {worst} has {int(counts[worst]):,} neighbours within "
                             f"{lim.neighbour_radius:g} Å, above the limit of {lim.max_neighbours_per_site:,} "
                             f"({env_name('max_neighbours_per_site')}).")


def validate_structure(
    structure: Structure,
    *,
    source: str = "structure",
    max_atoms: int | None = None,
    min_distance: float | None = None,
    limits: Limits | None = None,
) -> Structure:
    """Check that a structure is a sane, ordered periodic crystal within the limits.

    Args:
        structure: The structure to check.
        source: Name used in error messages (file name, row id).
        max_atoms: Largest number of sites accepted (default: ``limits.max_atoms``).
        min_distance: Smallest interatomic distance accepted, in Å (default: ``limits.min_distance``).
        limits: The bounds to apply (default: :func:`crystalrep.limits.current_limits`).

    Returns:
        The same structure.

    Raises:
        StructureError: One sentence naming the source and the reason.
    """
    lim = _limits(limits, max_atoms)
    if min_distance is not None:
        lim = lim.replace(min_distance=min_distance)
    n = len(structure)
    if n == 0:
        raise StructureError(f"{source}: the structure has no atoms.")
    if n > lim.max_atoms:
        raise StructureError(f"{source}: {n} atoms exceed the limit of {lim.max_atoms} per cell ({env_name('max_atoms')}).")
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if problem := cell_problem(matrix, n, lim):
        raise StructureError(f"{source}: {problem}.")
    frac = np.asarray(structure.frac_coords, dtype=float)
    if not np.isfinite(frac).all():
        raise StructureError(f"{source}: atomic coordinates contain NaN or infinite values.")
    if np.abs(frac).max() > lim.max_fractional_coordinate:
        raise StructureError(f"{source}: a fractional coordinate of {np.abs(frac).max():.4g} exceeds the limit of "
                             f"{lim.max_fractional_coordinate:g} ({env_name('max_fractional_coordinate')}).")
    for idx, site in enumerate(structure):
        if not site.is_ordered:
            raise StructureError(
                f"{source}: site {idx} ({site.species.formula}) has partial occupancy; "
                "only ordered crystals are supported."
            )
        element = site.specie
        if not hasattr(element, "Z") or getattr(element, "Z", 0) <= 0:
            raise StructureError(f"{source}: site {idx} has no real element ({element}).")
    _check_neighbours(matrix, frac, source, lim)
    return structure


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
            structures = _parse(text, fmt, name, lim, first=first)
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
    return _read(source, text, fmt, _limits(limits, max_atoms), first=False)


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
    return _read(source, text, fmt, _limits(limits, max_atoms), first=True)[0]
