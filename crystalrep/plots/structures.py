"""3-D views of crystals, crystal search, and the display tables of one crystal and its neighbours.

No Streamlit here. Why plotly rather than pymatviz's ``structure_3d``: it draws one trace per site
(94 traces for two 5-atom cells, ~0.4 s) and finds bonds with CrystalNN (seconds per cell). Here
each element is one ``Scatter3d`` trace in Jmol colours, bonds are half-sticks from a
covalent-radius rule (one line trace per element), coordination polyhedra one ``Mesh3d`` per
centre element, and the 12 cell edges one line trace: a 500-atom supercell draws at once.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crystalrep.plots.data import COLUMN_NAMES, label_name

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset

BOUNDARY_TOL = 1e-3  # fractional distance from a cell face within which an atom is repeated
CELL_COLOUR = "#555b66"
FALLBACK_COLOUR = "rgb(255,20,147)"  # Jmol's colour for unknown species
LABELS = COLUMN_NAMES  # kept for the pages that import it: one table of column names
BOND_TOLERANCE = 1.15  # a bond: distance <= 1.15 × the sum of covalent radii (VESTA-like)
MAX_BOND = 3.6  # Å; no longer bonds are drawn
ANION_EN = 2.5  # C, N, O, S, Se and the halogens
SHELL = 1.12  # a bond is at most 12 % longer than the nearer site's shortest bond
MAX_SITES = 600  # largest cell (after a supercell) drawn in 3-D
SUPERCELLS = ((1, 1, 1), (2, 2, 2), (3, 3, 3))
POLYHEDRON_SIZES = range(4, 9)  # tetrahedra to cubes; larger shells (Sr in SrTiO3: 12) would hide the cell

# The 12 edges of a parallelepiped, as pairs of corners in fractional coordinates.
_CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=float)
_EDGES = [(i, j) for i, j in itertools.combinations(range(8), 2) if np.abs(_CORNERS[i] - _CORNERS[j]).sum() == 1]


@functools.lru_cache(maxsize=512)
def spacegroup_label(number: int) -> str:
    """``"Fm-3m (225)"`` from an international space-group number; just the number if unknown."""
    from pymatgen.symmetry.groups import SpaceGroup

    try:
        return f"{SpaceGroup.from_int_number(int(number)).symbol} ({int(number)})"
    except (ValueError, KeyError):
        return str(number)


def crystal_labels(table: pd.DataFrame) -> list[str]:
    """One ``"id — formula — space group"`` label per dataset row, for a searchable picker."""
    groups = [spacegroup_label(n) for n in table["spacegroup"]]
    return [f"{i} — {f} — {g}" for i, f, g in zip(table["id"], table["formula"], groups, strict=True)]


def neighbour_display(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~crystalrep.analysis.retrieval.neighbour_table` for display: symbols, no row positions."""
    out = table.drop(columns=["row"], errors="ignore").copy()
    out["spacegroup"] = [spacegroup_label(n) for n in out["spacegroup"]]
    return out.rename(columns={"spacegroup": "space group"})


def _element_colour(symbol: str) -> str:
    # ase's copy of the Jmol table: the same colours as pymatviz's, whose import costs ~9 s
    from ase.data import atomic_numbers
    from ase.data.colors import jmol_colors

    z = atomic_numbers.get(symbol)
    if z is None or z >= len(jmol_colors):
        return FALLBACK_COLOUR
    return "rgb({},{},{})".format(*(round(255 * float(c)) for c in jmol_colors[z]))


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


def _bond_traces(structure: Structure, found: list[tuple[int, np.ndarray, int]]) -> list[go.Scatter3d]:
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
                         line={"color": _element_colour(symbol), "width": 5})
            for symbol, (x, y, z) in lines.items()]


def _polyhedra_traces(structure: Structure, found: list[tuple[int, np.ndarray, int]]) -> list[go.Mesh3d]:
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
                                name=f"{symbol} polyhedra", color=_element_colour(symbol), opacity=0.35,
                                flatshading=True, hoverinfo="skip", showlegend=False))
    return traces


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
            marker={"size": size, "color": _element_colour(symbol), "opacity": 1.0,
                    "line": {"color": "#333333", "width": 1}},
        ))
    if show_bonds or polyhedra:
        found = bonds(structure)
        if show_bonds:
            fig.add_traces(_bond_traces(structure, found))
        if polyhedra:
            fig.add_traces(_polyhedra_traces(structure, found))
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


def _element_rows(dataset: Dataset, symbol: str) -> np.ndarray:
    from pymatgen.core.periodic_table import Element

    owner = np.repeat(np.arange(len(dataset)), np.diff(dataset.offsets))
    mask = np.zeros(len(dataset), dtype=bool)
    mask[owner[dataset.numbers == Element(symbol).Z]] = True
    return mask


def search_rows(dataset: Dataset, query: str) -> np.ndarray:
    """Rows matching every word of ``query``: an element symbol (``Ba``, ``o``), a formula or an id.

    A word of one or two letters that is an element symbol (any case) matches the crystals that
    contain it; any other word matches ids containing it (case-insensitive) and formulas
    containing it or equal to it once reduced (``Ti2O4`` finds ``TiO2``). An empty query matches nothing.
    """
    from pymatgen.core import Composition
    from pymatgen.core.periodic_table import Element

    words = [w for w in re.split(r"[\s,;]+", query.strip()) if w]
    if not words:
        return np.zeros(0, dtype=np.int64)
    table = dataset.table
    ids, formulas = table["id"].astype(str).str.lower(), table["formula"].astype(str)
    mask = np.ones(len(dataset), dtype=bool)
    for word in words:
        symbol = word[:1].upper() + word[1:].lower()
        if word.isalpha() and len(word) <= 2 and Element.is_valid_symbol(symbol):
            mask &= _element_rows(dataset, symbol)
            continue
        hit = (ids.str.contains(word.lower(), regex=False).to_numpy()
               | formulas.str.contains(word, regex=False).to_numpy())
        try:
            hit |= (formulas == Composition(word).reduced_formula).to_numpy()
        except ValueError:  # not a formula: ids and substrings only
            pass
        mask &= hit
    return np.flatnonzero(mask)


def crystal_properties(dataset: Dataset, row: int) -> pd.DataFrame:
    """One crystal as a two-column table (``property``, ``value``): identity, symmetry, then every property."""
    table = dataset.table.iloc[row]
    rows = [("id", str(table["id"])), ("formula", str(table["formula"])),
            ("space group", spacegroup_label(int(table["spacegroup"]))),
            ("crystal system", str(table["crystal_system"])), ("sites per cell", str(int(table["nsites"])))]
    for name, info in dataset.properties.items():
        value = table[name]
        if pd.isna(value):
            text = "no value"
        elif info.kind == "numeric":
            text = f"{float(value):.4g}"
        else:
            text = str(value)
        rows.append((label_name(name, dataset), text))
    return pd.DataFrame(rows, columns=["property", "value"])
