"""Input checks and Cartesian positions, one cell and a stack of cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crystalrep.graphs import arrays_to_batch, arrays_to_graph, batch_edges
from tests.graphs.reference import CELLS
from tests.graphs.reference import as_cells as _cells


def test_bad_arrays_raise() -> None:
    with pytest.raises(ValueError, match="expected lattice"):
        arrays_to_graph(np.eye(3), [1, 2], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="neighbour list"):
        arrays_to_graph(np.zeros((3, 3)), [1], np.zeros((1, 3)))


def test_batch_reports_the_bad_cell() -> None:
    good = _cells([CELLS["cscl"]])[0]
    with pytest.raises(ValueError, match="must be finite"):
        arrays_to_batch([good, (good[0], good[1], np.full((2, 3), np.nan))])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_batch_error_names_the_cell() -> None:
    good = _cells([CELLS["cscl"]])[0]
    with pytest.raises(ValueError, match="cell 2: expected lattice"):
        batch_edges([good, good, (good[0], good[1], np.zeros((3, 3)))])
    with pytest.raises(ValueError, match="cell 1: lattice and frac_coords must be finite"):
        batch_edges([good, (np.full((3, 3), np.inf), good[1], good[2])])
    with pytest.raises(ValueError, match="cell 0: expected lattice"):
        batch_edges([(np.eye(2), good[1], good[2]), good])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("bad", ["lattice inf", "lattice nan", "frac inf", "frac nan", "empty cell inf"])
def test_non_finite_inputs_raise_alone_and_in_a_batch(bad: str) -> None:
    lattice, numbers, frac = np.eye(3) * 3.0, np.array([11, 17]), np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]])
    if bad.startswith("lattice"):  # an entry whose fractional column is all zero: 0 * inf is nan
        lattice[2, 0] = np.inf if bad.endswith("inf") else np.nan
        frac[:, 2] = 0.0
    elif bad.startswith("frac"):
        frac[1, 1] = np.inf if bad.endswith("inf") else np.nan
    else:
        lattice[0, 0], numbers, frac = np.inf, np.zeros(0, np.int64), np.zeros((0, 3))
    with pytest.raises(ValueError, match="must be finite"):
        arrays_to_graph(lattice, numbers, frac)
    with pytest.raises(ValueError, match="cell 1: lattice and frac_coords must be finite"):
        batch_edges([_cells([CELLS["cscl"]])[0], (lattice, numbers, frac)])


def test_read_only_and_non_contiguous_inputs() -> None:
    lattice, numbers, frac = _cells([CELLS["triclinic"]])[0]
    ref = arrays_to_graph(lattice, numbers, frac)
    frozen = [np.array(a) for a in (lattice, numbers, frac)]
    for a in frozen:
        a.flags.writeable = False
    strided = (np.asfortranarray(lattice), list(numbers), np.asfortranarray(frac))
    for cell in (frozen, strided):
        got = arrays_to_graph(*cell)
        assert all(torch.equal(got[k], ref[k]) for k in ref.keys() if torch.is_tensor(ref[k]))
        eb = batch_edges([cell, cell])
        assert eb.edges.tolist() == [ref.num_edges] * 2


def test_positions_equal_alone_and_stacked() -> None:
    from crystalrep.graphs.cells import cartesian, stacked

    rng = np.random.default_rng(7)
    cells = [(np.diag(rng.uniform(2, 9, 3)) + rng.normal(0, 2, (3, 3)), np.ones(n, np.int64), rng.uniform(-1, 2, (n, 3)))
             for n in rng.integers(1, 30, 40)]
    _, _, pos, atoms = stacked(cells)
    alone = np.concatenate([cartesian(frac, lattice) for lattice, _, frac in cells])
    assert atoms == [len(c[1]) for c in cells]
    np.testing.assert_array_equal(pos, alone)
    np.testing.assert_allclose(alone, np.concatenate([frac @ lattice for lattice, _, frac in cells]), rtol=1e-14, atol=1e-12)
