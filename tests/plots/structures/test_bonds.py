"""Bonds and coordination polyhedra (crystalrep.plots.structures.bonds)."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from crystalrep.plots.structures import bonds, structure_figure


def _srtio3() -> Structure:
    return Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_bonds_join_cations_to_anions_only() -> None:
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
