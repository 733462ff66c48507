"""CIF pre-checks: what a tokenised data block declares, checked against the limits before pymatgen builds anything.

pymatgen's structure parse is quadratic or worse in several places (blank-line runs, loop rows,
symmetry expansion); these checks read the tokenised block with numpy and refuse, in one
sentence naming the limit, a block that would cost seconds, minutes or gigabytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crystalrep.limits import Limits, cell_problem, env_name
from crystalrep.structures.errors import StructureError, short

if TYPE_CHECKING:
    from pymatgen.io.cif import CifBlock

CELL_KEYS = ("_cell_length_a", "_cell_length_b", "_cell_length_c",
             "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")
STRUCTURE_KEYS = ("_cell", "_symmetry", "_space_group", "_atom_site", "_atom_type", "_chemical_formula",
                  "_parent_space_group", "_magnetic")  # what pymatgen's structure parse reads
SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz",
              "_space_group_symop_magn_operation_xyz")


def _column(block: CifBlock, key: str) -> list[str]:
    """The values of one item of a block (a single value is stored as a plain string)."""
    value = block.data.get(key)
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def site_rows(block: CifBlock) -> int:
    """Rows of a tokenised block's atom-site loop (a single row is stored as a plain string)."""
    return max(len(_column(block, "_atom_site_fract_x")), len(_column(block, "_atom_site_Cartn_x")))


def cif_text(text: str, source: str, lim: Limits) -> str:
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


def structure_block(block: CifBlock, source: str, lim: Limits) -> CifBlock:
    """The block with only the items pymatgen's structure parse reads, each loop within the limits.

    The block is written out again for a parser of its own: reflection or geometry tables can be
    most of a CIF, and pymatgen's writer takes time quadratic in a loop's rows.
    """
    from pymatgen.io.cif import CifBlock

    data = {k: v for k, v in block.data.items() if k.lower().startswith(STRUCTURE_KEYS)}
    rows = max((len(v) for v in data.values() if not isinstance(v, str)), default=0)
    if rows > max(lim.max_sites, lim.max_symops):
        raise StructureError(f"{source}: a loop of {rows:,} rows exceeds the limit of {lim.max_sites} sites "
                             f"({env_name('max_sites')}).")
    loops = [[k for k in loop if k in data] for loop in block.loops]
    return CifBlock(data, [loop for loop in loops if loop], block.header)


def cell_matrix(block: CifBlock, source: str, lim: Limits) -> np.ndarray | str | None:
    """The block's cell as a matrix, checked against the limits before pymatgen sees it.

    Returns None when a parameter is missing (pymatgen may then fall back on the crystal
    system; the built lattice is checked later) and the reason when the numbers are not a
    cell; raises when they are one beyond a limit.
    """
    from pymatgen.io.cif import str2float

    values = []
    for key in CELL_KEYS:
        if key not in block.data:
            return None
        try:
            values.append(float(str2float(block.data[key])))
        except (ValueError, TypeError):
            return f"{key} {short(block.data[key])[:40]!r} is not a number"
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


def site_fractions(block: CifBlock, n_sites: int, source: str, lim: Limits) -> np.ndarray | None:
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


def symop_rows(block: CifBlock) -> int:
    """Symmetry operations listed in a block (magnetic ones times their centrings), uncounted by pymatgen."""
    rows: dict[str, int] = {}
    for key, value in block.data.items():
        name = key.replace(".", "_").rstrip("_")
        rows[name] = max(rows.get(name, 0), 1 if isinstance(value, str) else len(value))
    return max(rows.get(k, 0) for k in SYMOP_KEYS) * max(1, rows.get("_space_group_symop_magn_centering_xyz", 0))
