"""3-D unit-cell figures and the retrieval display helpers, checked on the figures' data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.plots.structures import (
    cell_edges,
    crystal_labels,
    neighbour_display,
    spacegroup_label,
    structure_figure,
)


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


def test_labels_and_display_table() -> None:
    assert spacegroup_label(225) == "Fm-3m (225)"
    assert spacegroup_label(999) == "999"
    table = pd.DataFrame({"rank": [1], "id": ["x"], "formula": ["NaCl"], "spacegroup": [221], "distance": [0.0],
                          "density": [2.1], "row": [7]})
    assert crystal_labels(table) == ["x — NaCl — Pm-3m (221)"]
    shown = neighbour_display(table)
    assert list(shown.columns) == ["rank", "id", "formula", "space group", "distance", "density"]
    assert shown.loc[0, "space group"] == "Pm-3m (221)"


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


def _srtio3() -> Structure:
    return Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_bonds_join_cations_to_anions_only() -> None:
    from crystalrep.plots.structures import bonds

    sto = _srtio3()
    found = bonds(sto)
    pairs = {(sto[i].specie.symbol, sto[j].specie.symbol) for i, _, j in found}
    assert pairs == {("Ti", "O"), ("O", "Ti"), ("Sr", "O"), ("O", "Sr")}  # no Ti-Sr at 3.38 Å, no O-O
    assert sum(1 for i, _, _ in found if i == 1) == 6  # Ti is octahedral
    fe = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert sum(1 for i, _, _ in bonds(fe) if i == 0) == 8  # a metal bonds to its 8 bcc neighbours


def test_bonds_and_polyhedra_are_traces_before_the_cell() -> None:
    fig = structure_figure(_srtio3(), show_bonds=True, polyhedra=True)
    names = [t.name for t in fig.data]
    assert {"Sr bonds", "Ti bonds", "O bonds", "Ti polyhedra"} <= set(names) and names[-1] == "cell"
    mesh = next(t for t in fig.data if t.name == "Ti polyhedra")
    assert mesh.type == "mesh3d" and len(mesh.i) == 8  # an octahedron has 8 faces; Sr (12-fold) has none
    assert not any(t.name.endswith(("bonds", "polyhedra")) for t in structure_figure(_srtio3()).data)


def test_supercell_option_and_its_limit(tiny_structures: list[Structure]) -> None:
    from crystalrep.plots.structures import MAX_SITES, supercells

    fig = structure_figure(tiny_structures[3], images=False, supercell=(2, 2, 2))
    assert sum(_atoms(fig).values()) == 8 * len(tiny_structures[3])
    assert supercells(5) == [(1, 1, 1), (2, 2, 2), (3, 3, 3)] and supercells(100) == [(1, 1, 1)]
    with pytest.raises(ValueError, match=str(MAX_SITES)):
        structure_figure(tiny_structures[3], supercell=(6, 6, 6))


def test_search_by_element_formula_and_id(tiny_structures: list[Structure]) -> None:
    from crystalrep.datasets import Dataset
    from crystalrep.plots.structures import search_rows

    ds = Dataset.from_structures("s", ["nacl-1", "fe-bcc", "zno-w", "sto-perov", "mgsio"], tiny_structures)
    assert list(search_rows(ds, "O")) == [2, 3, 4]  # an element: crystals containing oxygen
    assert list(search_rows(ds, "o ti")) == [3]  # every word must match, any case
    assert list(search_rows(ds, "Ti1Sr1O3")) == [3]  # a formula, reduced
    assert list(search_rows(ds, "perov")) == [3] and list(search_rows(ds, "NaCl")) == [0]
    assert len(search_rows(ds, "")) == 0 and len(search_rows(ds, "Xx9")) == 0


def test_crystal_properties_table(tiny_structures: list[Structure]) -> None:
    from crystalrep.datasets import Dataset, PropertyInfo
    from crystalrep.plots.structures import crystal_properties

    ds = Dataset.from_structures("s", [f"t{i}" for i in range(5)], tiny_structures,
                                 properties={"gap": [1.0, float("nan"), 3.0, 4.0, 5.0]},
                                 property_info={"gap": PropertyInfo("gap", unit="eV")})
    table = crystal_properties(ds, 1).set_index("property")["value"]
    assert table["id"] == "t1" and table["formula"] == "Fe" and table["gap (eV)"] == "no value"
    assert table["space group"].endswith("(221)") and table["crystal system"] == "cubic"
