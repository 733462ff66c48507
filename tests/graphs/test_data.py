"""One crystal as a ``Data``: edges agree edge-for-edge with pymatgen's neighbour list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalrep.graphs import GraphConfig, arrays_to_graph, dataset_graphs, structure_to_graph
from crystalrep.structures import StructureError
from tests.graphs.reference import (
    CELLS,
    assert_same_edges,
    assert_vectors_consistent,
    graph_edges,
    pymatgen_edges,
)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("cutoff", [3.0, 6.0])
def test_edges_match_pymatgen(name: str, cutoff: float) -> None:
    structure = CELLS[name]
    data = structure_to_graph(structure, config=GraphConfig(cutoff=cutoff))
    assert_same_edges(data, structure, cutoff)
    assert_vectors_consistent(data)


def test_cutoff_far_beyond_cell_has_self_images_but_no_self_pair() -> None:
    data = structure_to_graph(CELLS["simple_cubic_a2"], config=GraphConfig(cutoff=6.0))
    # integer shifts with |S| <= 3 in a 2 Å cube, excluding the origin (distance 6 is inside)
    grid = np.stack(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij"), -1).reshape(-1, 3)
    norms = np.linalg.norm(grid, axis=1)
    assert data.edge_index.shape[1] == int(((norms > 0) & (norms <= 3)).sum()) == 122
    assert bool((data.edge_index == 0).all())
    assert float(data.distance.min()) == pytest.approx(2.0)
    assert not bool((data.edge_shift == 0).all(dim=1).any())


def test_fields_dtypes_and_shapes() -> None:
    data = structure_to_graph(CELLS["cscl"], config=GraphConfig(cutoff=5.0))
    n_edges = data.edge_index.shape[1]
    assert data.num_nodes == 2
    assert data.z.dtype == torch.long and data.z.tolist() == [55, 17]
    assert data.pos.dtype == torch.float32 and data.pos.shape == (2, 3)
    assert data.cell.shape == (1, 3, 3) and data.cell.dtype == torch.float32
    assert data.edge_index.dtype == torch.long
    assert data.edge_shift.shape == (n_edges, 3)
    assert data.edge_vec.shape == (n_edges, 3) and data.edge_vec.dtype == torch.float32
    assert data.distance.shape == (n_edges,) and data.distance.dtype == torch.float32
    assert bool((data.edge_index[0][1:] >= data.edge_index[0][:-1]).all()), "grouped by centre"


def test_graph_does_not_share_memory_with_inputs() -> None:
    lattice, numbers, frac = np.eye(3) * 3.0, np.array([11, 17]), np.array([[0, 0, 0], [0.5, 0.5, 0.5]])
    data = arrays_to_graph(lattice, numbers, frac, config=GraphConfig(cutoff=4.0))
    data.z[0] = 0  # e.g. a masking pretext task editing the graph in place
    data.pos[0] = 1.0
    assert numbers.tolist() == [11, 17] and frac[0].tolist() == [0, 0, 0]
    before = {k: v.clone() for k, v in data.items() if torch.is_tensor(v)}
    arrays_to_graph(np.eye(3) * 2.5, [8], np.zeros((1, 3)), config=GraphConfig(cutoff=4.0))
    for key, value in before.items():  # the next call reuses vesin's buffers
        assert torch.equal(data[key], value), key


def test_disordered_structure_raises() -> None:
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(StructureError):
        structure_to_graph(disordered)


class _Arrays:
    """Minimal dataset stand-in: ``__len__`` and ``arrays(i)``."""

    def __init__(self, structures: list[Structure]) -> None:
        self._s = structures

    def __len__(self) -> int:
        return len(self._s)

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self._s[i]
        return s.lattice.matrix, np.array(s.atomic_numbers), s.frac_coords


def test_dataset_graphs_in_order_with_progress() -> None:
    structures = [CELLS[name] for name in sorted(CELLS)]
    calls: list[tuple[int, int]] = []
    graphs = dataset_graphs(_Arrays(structures), config=GraphConfig(cutoff=4.0), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k + 1, len(structures)) for k in range(len(structures))]
    for data, structure in zip(graphs, structures, strict=True):
        assert_same_edges(data, structure, 4.0)


def test_dataset_graphs_on_dataset(tiny_structures: list[Structure]) -> None:
    from crystalrep.datasets import Dataset

    ds = Dataset.from_structures("tiny", range(len(tiny_structures)), tiny_structures)
    for data, structure in zip(dataset_graphs(ds), tiny_structures, strict=True):
        assert_same_edges(data, structure, 6.0)


@pytest.mark.shared
@pytest.mark.parametrize("name", ["perov_5", "carbon_24"])
def test_real_structures_match_pymatgen(shared_data: Path, name: str) -> None:
    table = pd.read_csv(shared_data / name / "val.csv", nrows=50)
    for cif in table["cif"]:
        structure = Structure.from_str(cif, fmt="cif")
        data = structure_to_graph(structure, config=GraphConfig(cutoff=6.0))
        assert_same_edges(data, structure, 6.0)
        assert_vectors_consistent(data)
        capped = structure_to_graph(structure, config=GraphConfig(cutoff=8.0, max_neighbors=12))
        centres, _, _, dist = structure.get_neighbor_list(r=8.0)
        assert graph_edges(capped).keys() <= pymatgen_edges(structure, 8.0).keys()
        for centre in range(len(structure)):
            kept = np.sort(capped.distance[capped.edge_index[0] == centre].numpy())
            np.testing.assert_allclose(kept, np.sort(dist[centres == centre])[:12], atol=1e-5)


def test_graph_without_edges() -> None:
    data = structure_to_graph(CELLS["cscl"], config=GraphConfig(cutoff=1.0))
    assert data.edge_index.shape == (2, 0) and data.edge_index.dtype == torch.long
    assert data.edge_shift.shape == data.edge_vec.shape == (0, 3) and data.distance.shape == (0,)
    assert data.num_nodes == 2


def test_graph_equals_data_built_by_its_constructor() -> None:
    from torch_geometric.data import Batch, Data

    graphs = [structure_to_graph(CELLS[name], config=GraphConfig(cutoff=4.0)) for name in sorted(CELLS)]
    rebuilt = [Data(**dict(g.items())) for g in graphs]
    for fast, slow in zip(graphs, rebuilt, strict=True):
        assert fast.keys() == slow.keys() and str(fast) == str(slow)
        assert fast.num_nodes == slow.num_nodes and fast.num_edges == slow.num_edges
        assert all(fast[key].is_contiguous() for key in fast.keys() if torch.is_tensor(fast[key]))
    fast_batch, slow_batch = Batch.from_data_list(graphs), Batch.from_data_list(rebuilt)
    assert fast_batch.keys() == slow_batch.keys()
    for key in slow_batch.keys():
        a, b = fast_batch[key], slow_batch[key]
        assert torch.equal(a, b) if torch.is_tensor(b) else a == b, key
    graphs[0].z = graphs[0].z + 1  # attribute assignment reaches the same storage
    assert torch.equal(graphs[0].z, rebuilt[0].z + 1) and torch.equal(graphs[0]["z"], graphs[0].z)
