"""The merged-edge embedding pass equals the model's own forward (propagate) and merges only identical edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystalrep.encoders import get_encoder
from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn
from crystalrep.encoders.cgcnn_inference import embed_compact, group_edges
from crystalrep.graphs import GraphConfig, structure_to_graph


def _batch(structures: list[Structure]) -> Batch:
    return Batch.from_data_list([structure_to_graph(s, config=GraphConfig(cutoff=6.0)) for s in structures])


def _compact(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    return embed_compact(model, batch.z, batch.edge_index, batch.distance, batch.batch, batch.num_graphs)


@pytest.mark.parametrize("readout", ["mean", "set2set"])
def test_compact_pass_equals_propagate(tiny_structures: list[Structure], readout: str) -> None:
    model = build_cgcnn(CGCNNConfig(readout=readout), seed=4)
    batch = _batch([*tiny_structures, tiny_structures[3] * (2, 1, 1)])
    with torch.no_grad():  # grad mode off, not inference mode: torch-geometric's propagate runs
        reference = model(batch)
    got = _compact(model, batch)
    assert got.shape == reference.shape
    assert float((got - reference).abs().max() / reference.abs().max()) < 1e-6


def test_group_edges_keeps_every_edge_once() -> None:
    cubic = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    graph = structure_to_graph(cubic, config=GraphConfig(cutoff=6.0))
    groups = group_edges(graph.edge_index, graph.distance, graph.num_nodes)
    assert len(groups.multiplicity) < graph.num_edges / 3  # a cubic cell repeats most edges
    assert int(groups.multiplicity.sum()) == graph.num_edges
    assert bool((groups.centre[1:] >= groups.centre[:-1]).all())  # sorted by centre
    merged = torch.stack([groups.pair_centre[groups.pair], groups.pair_neighbor[groups.pair],
                          groups.distances[groups.distance].view(torch.int32).long()])
    expanded = merged.repeat_interleave(groups.multiplicity, dim=1)
    original = torch.stack([*graph.edge_index, graph.distance.view(torch.int32).long()])
    assert sorted(map(tuple, expanded.T.tolist())) == sorted(map(tuple, original.T.tolist()))


def test_group_edges_compares_distances_exactly() -> None:
    d = torch.tensor(2.5)
    distance = torch.stack([d, d, torch.nextafter(d, torch.tensor(3.0)), d])
    edge_index = torch.tensor([[0, 0, 0, 1], [1, 1, 1, 0]])
    groups = group_edges(edge_index, distance, 2)
    assert groups.multiplicity.tolist() == [2, 1, 1]
    assert groups.centre.tolist() == [0, 0, 1]


def test_atom_without_neighbours(tiny_structures: list[Structure]) -> None:
    lonely = Structure(Lattice.cubic(20.0), ["Si"], [[0, 0, 0]])
    model = build_cgcnn(seed=1)
    batch = _batch([lonely, tiny_structures[0]])
    with torch.no_grad():
        reference = model(batch)
    torch.testing.assert_close(_compact(model, batch), reference, rtol=1e-5, atol=1e-6)


def test_heavy_element_raises() -> None:
    model = build_cgcnn(CGCNNConfig(max_z=20), seed=0)
    batch = _batch([Structure(Lattice.cubic(3.0), ["Fe"], [[0, 0, 0]])])
    with pytest.raises(ValueError, match="above 20"):
        _compact(model, batch)


def test_encoder_equals_the_previous_path(tiny_structures: list[Structure]) -> None:
    enc = get_encoder("cgcnn-random")
    cells = [*tiny_structures, tiny_structures[2] * (1, 1, 2)]
    with torch.inference_mode():  # the per-cell graphs and in-place model step embed_structures used before
        previous = enc.model(_batch(cells)).numpy()
    got = enc.embed_structures(cells, device="cpu", batch_size=3)
    assert got.dtype == np.float32
    assert float(np.abs(got - previous).max() / np.abs(previous).max()) < 1e-6
