"""Many crystals a call: the same edges and tensors as one cell at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from crystalrep.graphs import GraphConfig, arrays_to_batch, arrays_to_graph, batch_edges
from tests.graphs.reference import CELLS, TRICLINIC
from tests.graphs.reference import as_cells as _cells


@pytest.mark.parametrize("config", [GraphConfig(), GraphConfig(cutoff=8.0, max_neighbors=12), GraphConfig(cutoff=1.0)])
def test_batch_equals_collated_per_cell_graphs(config: GraphConfig) -> None:
    cells = _cells([*CELLS.values(), TRICLINIC * (2, 1, 1)])
    ref = Batch.from_data_list([arrays_to_graph(*c, config=config) for c in cells])
    got = arrays_to_batch(cells, config=config)
    assert type(got) is type(ref) and list(got.keys()) == list(ref.keys()) and got.num_graphs == ref.num_graphs
    for key in ref.keys():
        a, b = ref[key], got[key]
        assert (torch.equal(a, b) and a.dtype == b.dtype) if torch.is_tensor(a) else a == b, key
    for key in ref._slice_dict:
        assert torch.equal(got._slice_dict[key], ref._slice_dict[key]), key
        assert torch.equal(got._inc_dict[key], ref._inc_dict[key]), key
    for i, graph in enumerate(got.to_data_list()):  # the per-crystal graphs come back out
        expected = ref.get_example(i)
        assert all(torch.equal(graph[k], expected[k]) if torch.is_tensor(expected[k]) else graph[k] == expected[k]
                   for k in expected.keys())


def test_batch_edges_number_atoms_through_the_batch() -> None:
    cells = _cells([CELLS["cscl"], CELLS["simple_cubic_a2"]])
    eb = batch_edges(cells, config=GraphConfig(cutoff=4.2))
    single = [arrays_to_graph(*c, config=GraphConfig(cutoff=4.2)) for c in cells]
    assert eb.atoms.tolist() == [2, 1] and eb.edges.tolist() == [g.num_edges for g in single]
    assert eb.index[:, eb.edges[0]:].min() == 2  # the second crystal's atom is atom 2
    np.testing.assert_array_equal(eb.z, [55, 17, 84])
    assert eb.lattices.shape == (2, 3, 3) and eb.pos.shape == (3, 3)
    empty = batch_edges([], config=GraphConfig())
    assert empty.index.shape == (2, 0) and empty.atoms.shape == (0,)


def _assert_batch_equals_cells(eb, cells, config: GraphConfig) -> None:
    """Every crystal's slice of the batch equals its own graph, bit for bit (before float32)."""
    from crystalrep.graphs.cells import prepared
    from crystalrep.graphs.edges import cell_edges

    assert eb.atoms.tolist() == [len(c[1]) for c in cells]
    first_atom, first_edge = 0, 0
    for cell, n, e in zip(cells, eb.atoms, eb.edges, strict=True):
        lattice, z, pos = prepared(*cell)
        index, shift, dist, vec = cell_edges(pos, lattice, config)
        got = slice(first_edge, first_edge + e)
        assert index.shape[1] == e
        np.testing.assert_array_equal(eb.index[:, got] - first_atom, index)
        for a, b in ((eb.shift[got], shift), (eb.dist[got], dist), (eb.vec[got], vec),
                     (eb.pos[first_atom:first_atom + n], pos), (eb.z[first_atom:first_atom + n], z)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        first_atom, first_edge = first_atom + n, first_edge + e
    assert first_edge == eb.index.shape[1] == len(eb.dist) == len(eb.vec) == len(eb.shift)
    assert eb.index.flags.c_contiguous and eb.index.dtype == np.int64


def test_coincident_points_dropped_in_a_batch_as_per_cell() -> None:
    twin = (np.eye(3) * 3.0, [6, 6, 8], np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.5, 0.5, 0.5]]))
    cells = [*_cells([CELLS["cscl"]]), twin, *_cells([CELLS["triclinic"]])]
    eb = batch_edges(cells, config=GraphConfig(cutoff=4.0))
    assert float(eb.dist.min()) > 1e-8
    _assert_batch_equals_cells(eb, cells, GraphConfig(cutoff=4.0))


def test_cells_without_atoms_in_a_batch() -> None:
    empty = (np.eye(3) * 4.0, np.zeros(0, np.int64), np.zeros((0, 3)))
    cells = [empty, *_cells([CELLS["cscl"]]), empty]
    eb = batch_edges(cells, config=GraphConfig(cutoff=5.0))
    assert eb.atoms.tolist() == [0, 2, 0] and eb.edges[0] == eb.edges[2] == 0
    _assert_batch_equals_cells(eb, cells, GraphConfig(cutoff=5.0))


def test_batch_grows_past_its_first_reserve() -> None:
    from crystalrep.graphs.neighbors import neighbor_list

    cells = _cells([CELLS[name] for name in sorted(CELLS)] * 3)
    neighbor_list(7.0)._per_atom = 0.0  # the reserve holds no edges: every cell grows it
    eb = batch_edges(cells, config=GraphConfig(cutoff=7.0))
    _assert_batch_equals_cells(eb, cells, GraphConfig(cutoff=7.0))
    neighbor_list(7.0)._per_atom = 1e4  # far too many: the result is compacted, not a view
    eb = batch_edges(cells, config=GraphConfig(cutoff=7.0))
    _assert_batch_equals_cells(eb, cells, GraphConfig(cutoff=7.0))
    assert eb.dist.base is None or eb.dist.base.nbytes <= 2 * eb.dist.nbytes + 16 * 8


@pytest.mark.shared
@pytest.mark.parametrize("name", ["perov_5", "carbon_24"])
def test_real_batches_equal_per_cell_graphs_and_pymatgen(shared_data, name: str) -> None:
    import pandas as pd
    from pymatgen.core import Structure

    from crystalrep.encoders.base import atom_batches
    from tests.graphs.reference import edge_map, pymatgen_edges

    structures = [Structure.from_str(c, fmt="cif") for c in pd.read_csv(shared_data / name / "val.csv", nrows=60)["cif"]]
    cells = _cells(structures)
    config = GraphConfig(cutoff=6.0)
    for start, stop in atom_batches([len(s) for s in structures], 64, 64):  # as the embedders batch
        eb = batch_edges(cells[start:stop], config=config)
        _assert_batch_equals_cells(eb, cells[start:stop], config)
        first_atom, first_edge = 0, 0
        for s, n, e in zip(structures[start:stop], eb.atoms, eb.edges, strict=True):
            got = slice(first_edge, first_edge + e)
            ours = edge_map(eb.index[0, got] - first_atom, eb.index[1, got] - first_atom, eb.shift[got], eb.dist[got])
            ref = pymatgen_edges(s, 6.0)
            assert ours.keys() == ref.keys()
            assert max((abs(ours[k] - ref[k]) for k in ref), default=0.0) < 1e-9
            first_atom, first_edge = first_atom + n, first_edge + e
