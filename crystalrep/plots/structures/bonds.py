"""Bonds from a covalent-radius rule, the traces that draw them and coordination polyhedra, in Jmol colours.

Why not pymatviz or CrystalNN: CrystalNN takes seconds per cell; here bonds are half-sticks (one
line trace per element) and polyhedra one ``Mesh3d`` per centre element, so a 500-atom supercell
draws at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from pymatgen.core import Structure

FALLBACK_COLOUR = "rgb(255,20,147)"  # Jmol's colour for unknown species
BOND_TOLERANCE = 1.15  # a bond: distance <= 1.15 × the sum of covalent radii (VESTA-like)
MAX_BOND = 3.6  # Å; no longer bonds are drawn
ANION_EN = 2.5  # C, N, O, S, Se and the halogens
SHELL = 1.12  # a bond is at most 12 % longer than the nearer site's shortest bond
POLYHEDRON_SIZES = range(4, 9)  # tetrahedra to cubes; larger shells (Sr in SrTiO3: 12) would hide the cell


def element_colour(symbol: str) -> str:
    """The Jmol colour of an element as ``"rgb(r,g,b)"`` (:data:`FALLBACK_COLOUR` if unknown)."""
    # ase's copy of the Jmol table: the same colours as pymatviz's, whose import costs ~9 s
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors

    z = atomic_numbers.get(symbol)
    if z is None or z >= len(jmol_colors):
        return FALLBACK_COLOUR
    return "rgb({},{},{})".format(*(round(255 * float(c)) for c in jmol_colors[z]))


def _covalent(symbol: str) -> float:
    # ase's table (Cordero et al. 2008): pymatgen's copy sits in a module whose import costs 2 s
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers[symbol]])


def bonds(structure: Structure) -> list[tuple[int, np.ndarray, int]]:
    """``(site, neighbour cartesian position, neighbour site)`` for every bond, in both directions.

    A bond joins two sites closer than :data:`BOND_TOLERANCE` times the sum of their covalent
    radii (and :data:`MAX_BOND`), and within :data:`SHELL` of the nearer of the two sites' first
    neighbour shells, so bcc iron bonds its 8 neighbours at 2.49 Å, not the 6 at 2.87 Å. In a
    crystal with anions (Pauling electronegativity >= :data:`ANION_EN`) and cations, two cations
    are never bonded: distance alone would bond Ti to Sr in SrTiO3 (3.38 Å, 0.95 of the radii
    sum) as readily as Sr to O.
    """
    symbols = [site.specie.symbol for site in structure]
    radii = {s: _covalent(s) for s in set(symbols)}
    anion = {s: float(structure[symbols.index(s)].specie.X or 0.0) >= ANION_EN for s in set(symbols)}
    ionic = any(anion.values()) and not all(anion.values())
    cutoff = min(MAX_BOND, BOND_TOLERANCE * 2 * max(radii.values()))
    candidates = []
    for i, neighbours in enumerate(structure.get_all_neighbors(cutoff)):
        a = symbols[i]
        for nb in neighbours:
            b = symbols[nb.index]
            if ionic and not (anion[a] or anion[b]):
                continue
            if nb.nn_distance <= min(MAX_BOND, BOND_TOLERANCE * (radii[a] + radii[b])):
                candidates.append((i, np.asarray(nb.coords, dtype=float), int(nb.index), float(nb.nn_distance)))
    nearest: dict[int, float] = {}
    for i, _, _, d in candidates:
        nearest[i] = min(d, nearest.get(i, np.inf))
    return [(i, end, j) for i, end, j, d in candidates if d <= SHELL * max(nearest[i], nearest.get(j, 0.0))]


def bond_traces(structure: Structure, found: list[tuple[int, np.ndarray, int]]) -> list[go.Scatter3d]:
    """Half-sticks from each atom to each bond's midpoint, in the atom's colour (one trace per element)."""
    import plotly.graph_objects as go

    lines: dict[str, list[list[float | None]]] = {}
    for i, end, _ in found:
        start = np.asarray(structure[i].coords, dtype=float)
        mid = (start + end) / 2
        xyz = lines.setdefault(structure[i].specie.symbol, [[], [], []])
        for axis in range(3):
            xyz[axis].extend([float(start[axis]), float(mid[axis]), None])
    return [go.Scatter3d(x=x, y=y, z=z, mode="lines", name=f"{symbol} bonds", hoverinfo="skip", showlegend=False,
                         line={"color": element_colour(symbol), "width": 5})
            for symbol, (x, y, z) in lines.items()]


def polyhedra_traces(structure: Structure, found: list[tuple[int, np.ndarray, int]]) -> list[go.Mesh3d]:
    """Convex hulls around centres whose 4 to 8 bonded neighbours are all more electronegative elements."""
    import plotly.graph_objects as go
    from scipy.spatial import ConvexHull, QhullError

    symbols = [site.specie.symbol for site in structure]
    en = {s: float(structure[symbols.index(s)].specie.X) for s in set(symbols)}
    shells: dict[int, list[np.ndarray | None]] = {}
    for i, end, j in found:
        shells.setdefault(i, []).append(end if en[symbols[j]] > en[symbols[i]] else None)
    meshes: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for i, ends in shells.items():
        if len(ends) not in POLYHEDRON_SIZES or any(e is None for e in ends):
            continue
        points = np.asarray(ends)
        try:
            hull = ConvexHull(points)
        except QhullError:  # a flat (square-planar) shell has no volume to draw
            continue
        vertices, faces = meshes.setdefault(symbols[i], ([], []))
        faces.append(hull.simplices + sum(len(v) for v in vertices))
        vertices.append(points)
    traces = []
    for symbol, (vertices, faces) in meshes.items():
        xyz, ijk = np.concatenate(vertices), np.concatenate(faces)
        traces.append(go.Mesh3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], i=ijk[:, 0], j=ijk[:, 1], k=ijk[:, 2],
                                name=f"{symbol} polyhedra", color=element_colour(symbol), opacity=0.35,
                                flatshading=True, hoverinfo="skip", showlegend=False))
    return traces
