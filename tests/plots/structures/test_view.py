"""3-D unit-cell figures (crystalrep.plots.structures.view), checked on the figures' data."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.plots.structures import MAX_SITES, cell_edges, structure_figure, supercells


def _atoms(fig) -> dict[str, int]:
    return {t.name: len(t.x) for t in fig.data if t.mode == "markers"}


def test_one_trace_per_element_and_every_atom_drawn(tiny_structures: list[Structure]) -> None:
    for s in tiny_structures:
        fig = structure_figure(s, images=False)
        counts = _atoms(fig)
        assert set(counts) == {sp.symbol for sp in s.composition.elements}
        assert sum(counts.values()) == len(s)
        assert fig.data[-1].name == "cell" and fig.data[-1].mode == "lines"


def test_cell_edges_are_the_twelve_lattice_edges(tiny_structures: list[Structure]) -> None:
    s = tiny_structures[4]  # triclinic
    fig = structure_figure(s)
    cell = fig.data[-1]
    assert sum(v is None for v in cell.x) == 12
    ends = np.array([[x, y, z] for x, y, z in zip(cell.x, cell.y, cell.z, strict=True) if x is not None])
    lengths = np.linalg.norm(ends[0::2] - ends[1::2], axis=1)
    a, b, c = s.lattice.abc
    np.testing.assert_allclose(np.sort(lengths), np.sort([a] * 4 + [b] * 4 + [c] * 4))
    xs, _, _ = cell_edges(np.eye(3))
    assert max(v for v in xs if v is not None) == 1.0


def test_boundary_images_toggle_changes_the_atom_count() -> None:
    fe = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert _atoms(structure_figure(fe, images=True)) == {"Fe": 9}  # 8 corners + body centre
    assert _atoms(structure_figure(fe, images=False)) == {"Fe": 2}
    almost = Structure(Lattice.cubic(4.0), ["Na"], [[0.99995, 0.5, 0.5]])
    assert _atoms(structure_figure(almost)) == {"Na": 2}  # 0.99995 sits on the face at 0 and 1


def test_jmol_colours_and_title(tiny_structures: list[Structure]) -> None:
    fig = structure_figure(tiny_structures[0], title="query")
    colours = {t.name: t.marker.color for t in fig.data if t.mode == "markers"}
    assert colours["Cl"] == "rgb(31,240,31)" and colours["Na"] != colours["Cl"]
    assert fig.layout.title.text == "query"
    assert structure_figure(tiny_structures[3]).layout.title.text == "SrTiO3"


@pytest.mark.parametrize("n", [1, 3])
def test_supercell_draws_every_site(tiny_structures: list[Structure], n: int) -> None:
    big = tiny_structures[3].copy()
    big.make_supercell([n, n, n])
    assert sum(_atoms(structure_figure(big, images=False)).values()) == len(big)


def test_axis_ranges_leave_room_around_the_outermost_atoms(tiny_structures: list[Structure]) -> None:
    fig = structure_figure(tiny_structures[4])
    for axis, values in (("xaxis", "x"), ("yaxis", "y"), ("zaxis", "z")):
        lo, hi = getattr(fig.layout.scene, axis).range
        coords = np.concatenate([[v for v in getattr(t, values) if v is not None] for t in fig.data])
        assert lo < coords.min() and coords.max() < hi
    assert max(fig.layout.scene.aspectratio.x, fig.layout.scene.aspectratio.y, fig.layout.scene.aspectratio.z) == 1.0


def test_supercell_option_and_its_limit(tiny_structures: list[Structure]) -> None:
    fig = structure_figure(tiny_structures[3], images=False, supercell=(2, 2, 2))
    assert sum(_atoms(fig).values()) == 8 * len(tiny_structures[3])
    assert supercells(5) == [(1, 1, 1), (2, 2, 2), (3, 3, 3)] and supercells(100) == [(1, 1, 1)]
    with pytest.raises(ValueError, match=str(MAX_SITES)):
        structure_figure(tiny_structures[3], supercell=(6, 6, 6))
