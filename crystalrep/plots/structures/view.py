"""A crystal's cell in 3-D: one marker trace per element, periodic images on the faces, the 12 edges.

No Streamlit here. Why plotly rather than pymatviz's ``structure_3d``: it draws one trace per site
(94 traces for two 5-atom cells, ~0.4 s). Here each element is one ``Scatter3d`` trace in Jmol
colours and the cell edges one line trace; bonds and polyhedra come from
:mod:`crystalrep.plots.structures.bonds`.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from crystalrep.plots.structures.bonds import bond_traces, bonds, element_colour, polyhedra_traces

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from pymatgen.core import Structure

BOUNDARY_TOL = 1e-3  # fractional distance from a cell face within which an atom is repeated
CELL_COLOUR = "#555b66"
MAX_SITES = 600  # largest cell (after a supercell) drawn in 3-D
SUPERCELLS = ((1, 1, 1), (2, 2, 2), (3, 3, 3))

# The 12 edges of a parallelepiped, as pairs of corners in fractional coordinates.
_CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=float)
_EDGES = [(i, j) for i, j in itertools.combinations(range(8), 2) if np.abs(_CORNERS[i] - _CORNERS[j]).sum() == 1]


def _radius(symbol: str) -> float:
    from pymatgen.core.periodic_table import Element

    radius = Element(symbol).atomic_radius
    return float(radius) if radius is not None else 1.5


def _boundary_images(frac: np.ndarray, tol: float) -> np.ndarray:
    """Copies of one wrapped fractional position shifted by +1 along each axis where it sits on a face."""
    options = [(0.0, 1.0) if f < tol else (0.0,) for f in frac]
    return np.array([frac + np.array(shift) for shift in itertools.product(*options)])


def cell_edges(matrix: np.ndarray) -> tuple[list[float | None], list[float | None], list[float | None]]:
    """x, y, z of the 12 cell edges as one polyline, ``None`` between edges."""
    corners = _CORNERS @ np.asarray(matrix, dtype=float)
    xs: list[float | None] = []
    ys: list[float | None] = []
    zs: list[float | None] = []
    for i, j in _EDGES:
        for axis, values in enumerate((xs, ys, zs)):
            values.extend([float(corners[i, axis]), float(corners[j, axis]), None])
    return xs, ys, zs


def structure_figure(structure: Structure, *, title: str = "", images: bool = True, height: int = 340,
                     supercell: tuple[int, int, int] = (1, 1, 1), show_bonds: bool = False,
                     polyhedra: bool = False) -> go.Figure:
    """The cell in 3-D: one marker trace per element (Jmol colours), optional bonds and polyhedra, the edges.

    Args:
        structure: An ordered crystal.
        title: Figure title (the formula when empty).
        images: Repeat atoms lying on a cell face on the opposite face, as crystal viewers do.
        height: Figure height in pixels (atoms grow with it).
        supercell: Repetitions along a, b, c (the edges drawn are the supercell's).
        show_bonds: Draw bonds (:func:`bonds`) as half-sticks in the atoms' colours.
        polyhedra: Draw coordination polyhedra around the electropositive centres.

    Returns:
        A figure whose first traces are the elements (name = symbol, hover: site index and
        fractional coordinates), then bonds and polyhedra if asked for, and whose last trace,
        named ``"cell"``, holds the 12 edges.

    Raises:
        ValueError: The supercell would exceed :data:`MAX_SITES` sites.
    """
    import plotly.graph_objects as go

    if tuple(supercell) != (1, 1, 1):
        if len(structure) * int(np.prod(supercell)) > MAX_SITES:
            raise ValueError(f"a {'×'.join(map(str, supercell))} supercell of {len(structure)} sites exceeds "
                             f"the {MAX_SITES} drawn in 3-D.")
        structure = structure.copy()
        structure.make_supercell(list(supercell))
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    extent = float(np.ptp(_CORNERS @ matrix, axis=0).max())
    frac = np.mod(structure.frac_coords, 1.0)
    frac[frac > 1 - BOUNDARY_TOL] = 0.0  # 0.9999… is the same face as 0
    symbols = [site.specie.symbol for site in structure]
    fig = go.Figure()
    drawn = [_CORNERS @ matrix]
    for symbol in dict.fromkeys(symbols):
        sites = [i for i, s in enumerate(symbols) if s == symbol]
        points, hover = [], []
        for i in sites:
            copies = _boundary_images(frac[i], BOUNDARY_TOL) if images else frac[i][None, :]
            for k, f in enumerate(copies):
                points.append(f)
                tag = " (periodic image)" if k else ""
                hover.append(f"{symbol} site {i}{tag}<br>frac ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f})")
        xyz = np.asarray(points) @ matrix
        drawn.append(xyz)
        size = float(np.clip(_radius(symbol) * 70 / max(extent, 1.0), 3, 16)) * max(height / 340, 1.0)
        fig.add_trace(go.Scatter3d(  # marker sizes are px: they do not zoom
            x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=symbol, text=hover,
            hovertemplate="%{text}<extra></extra>",
            marker={"size": size, "color": element_colour(symbol), "opacity": 1.0,
                    "line": {"color": "#333333", "width": 1}},
        ))
    if show_bonds or polyhedra:
        found = bonds(structure)
        if show_bonds:
            fig.add_traces(bond_traces(structure, found))
        if polyhedra:
            fig.add_traces(polyhedra_traces(structure, found))
    xs, ys, zs = cell_edges(matrix)
    fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", name="cell", hoverinfo="skip", showlegend=False,
                               line={"color": CELL_COLOUR, "width": 3}))
    # Explicit, padded ranges: with autoranged axes the atoms on the outermost faces are cut in half.
    everything = np.concatenate(drawn)
    pad = 0.1 * max(extent, 1.0)
    lo, hi = everything.min(axis=0) - pad, everything.max(axis=0) + pad
    span = hi - lo
    axes = [{"visible": False, "showbackground": False, "range": [float(a), float(b)]} for a, b in zip(lo, hi, strict=True)]
    fig.update_layout(
        title={"text": title or structure.composition.reduced_formula, "x": 0.02, "font": {"size": 14}},
        height=height, margin={"l": 0, "r": 0, "t": 36, "b": 0},
        scene={"xaxis": axes[0], "yaxis": axes[1], "zaxis": axes[2], "aspectmode": "manual",
               "aspectratio": dict(zip("xyz", (float(v) for v in span / span.max()), strict=True)),
               # Orthographic, as crystal viewers draw cells; the eye stays far enough to fit the cell.
               "camera": {"projection": {"type": "orthographic"}, "eye": {"x": 1.6, "y": 1.3, "z": 1.0}}},
        legend={"orientation": "h", "yanchor": "bottom", "y": 0.0, "x": 0.0, "itemsizing": "constant"},
        uirevision="structure",
    )
    return fig


def supercells(nsites: int) -> list[tuple[int, int, int]]:
    """The :data:`SUPERCELLS` that stay within :data:`MAX_SITES` for a cell of ``nsites`` sites."""
    return [s for s in SUPERCELLS if nsites * int(np.prod(s)) <= MAX_SITES]
