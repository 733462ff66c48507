"""Validation of a parsed crystal: finite numbers, a sane cell, ordered real elements, atoms not too close or crowded.

Every bound comes from :mod:`crystalrep.limits`; the cell's shape is checked before any
neighbour search, and the neighbour search itself is bounded by the cell's volume per atom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymatgen.core import Structure

from crystalrep.limits import Limits, cell_problem, current_limits, env_name
from crystalrep.structures.errors import StructureError

MAX_ATOMS = Limits().max_atoms  # the defaults, kept for callers that name them
MIN_DISTANCE = Limits().min_distance


def effective_limits(limits: Limits | None, max_atoms: int | None) -> Limits:
    """The limits in force: ``limits`` or the environment's; ``max_atoms`` caps sites and atoms."""
    lim = limits if limits is not None else current_limits()
    return lim if max_atoms is None else lim.replace(max_atoms=max_atoms, max_sites=max_atoms)


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
    lim = effective_limits(limits, max_atoms)
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
