"""Crystal inputs checked and turned into Cartesian positions, one cell or a stack of cells.

A batch is checked with a handful of whole-batch NumPy calls; only when that finds a problem
are the cells checked one by one, so the error names the first bad cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from crystalrep.graphs.errors import CellError

Cell = tuple[np.ndarray, Any, np.ndarray]
NON_FINITE = "lattice and frac_coords must be finite."


def cartesian(frac: np.ndarray, lattices: np.ndarray) -> np.ndarray:
    """Positions ``frac @ lattice`` as C-contiguous ``[N, 3]``.

    ``lattices`` is one ``[3, 3]`` lattice or one per atom ``[N, 3, 3]``. Written out as
    ``(f0 a + f1 b) + f2 c`` rather than ``matmul`` (whose BLAS kernels fuse multiply-adds):
    the compiled batch loop (``_cells.c``) computes the same sums in the same order, so a
    cell's positions, and hence its edges, are equal bit for bit whichever path built them.
    """
    return (frac[:, 0:1] * lattices[..., 0, :] + frac[:, 1:2] * lattices[..., 1, :]) + frac[:, 2:3] * lattices[..., 2, :]


def prepared(lattice: np.ndarray, numbers: np.ndarray | Sequence[int],
             frac_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lattice, z, pos)``: C-contiguous float64 / a fresh int64 copy / Cartesian positions.

    Raises:
        ValueError: If the shapes disagree or a value is not finite.
    """
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    frac = np.asarray(frac_coords, dtype=np.float64)
    z = np.array(numbers, dtype=np.int64)  # a copy: z is the one tensor not converted anyway
    if lattice.shape != (3, 3) or z.ndim != 1 or frac.shape != (len(z), 3):
        raise ValueError(f"expected lattice (3, 3), numbers (n,) and frac_coords (n, 3), got "
                         f"{lattice.shape}, {z.shape} and {frac.shape}.")
    pos = cartesian(frac, lattice)
    # one check for both inputs: a non-finite lattice entry spoils its column of every
    # position (x * inf, 0 * inf = nan) and a non-finite coordinate its atom's row
    if not np.isfinite(pos if len(pos) else lattice).all():
        raise ValueError(NON_FINITE)
    return lattice, z, pos


def _raise_first_bad(cells: Sequence[Cell]) -> NoReturn:
    for b, cell in enumerate(cells):
        try:
            prepared(*cell)
        except ValueError as exc:
            raise CellError(b, str(exc)) from None
    raise ValueError("cells cannot be stacked: expected (lattice, numbers, frac_coords) per cell.")


def gathered(cells: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """``(lattices [B, 3, 3], z [N], frac [N, 3], atoms per cell)`` of many cells, shapes checked.

    Raises:
        CellError: For the first cell with wrong shapes (values are checked by :func:`positions`).
    """
    if not len(cells):
        return np.zeros((0, 3, 3)), np.zeros(0, np.int64), np.zeros((0, 3)), []
    try:
        lats, nums, fracs = zip(*cells, strict=True)
        lattices = np.array(lats, dtype=np.float64)
        z = np.concatenate(nums, dtype=np.int64, casting="unsafe")
        frac = np.concatenate(fracs, dtype=np.float64, casting="unsafe")
        atoms = list(map(len, nums))
    except (ValueError, TypeError):
        _raise_first_bad(cells)
    if not (lattices.shape == (len(cells), 3, 3) and z.ndim == 1 and frac.shape == (len(z), 3)
            and list(map(len, fracs)) == atoms):
        _raise_first_bad(cells)
    return lattices, z, frac, atoms


def positions(frac: np.ndarray, lattices: np.ndarray, atoms: Sequence[int] | np.ndarray) -> np.ndarray:
    """Cartesian positions ``[N, 3]`` of stacked cells (as :func:`prepared` makes each).

    Raises:
        CellError: For the first cell with a non-finite value.
    """
    pos = cartesian(frac, np.repeat(lattices, atoms, axis=0))
    # as in prepared(), finite positions imply finite inputs for every cell with atoms
    if not (np.isfinite(pos).all() and (0 not in atoms or np.isfinite(lattices).all())):
        first = 0
        for b, n in enumerate(atoms):
            if not np.isfinite(pos[first:first + n] if n else lattices[b]).all():
                raise CellError(b, NON_FINITE)
            first += n
    return pos


def stacked(cells: Sequence[Cell]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """``(lattices [B, 3, 3], z [N], pos [N, 3], atoms per cell)`` of many cells, as :func:`prepared`.

    Raises:
        CellError: For the first cell with wrong shapes or non-finite values.
    """
    lattices, z, frac, atoms = gathered(cells)
    return lattices, z, positions(frac, lattices, atoms), atoms
