"""The CGCNN model: the in-place inference step equals torch-geometric's propagate to the bit."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch

from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn
from crystalrep.graphs import GraphConfig, structure_to_graph


@pytest.mark.parametrize("readout", ["mean", "set2set"])
def test_inference_step_equals_propagate(tiny_structures: list[Structure], readout: str) -> None:
    model = build_cgcnn(CGCNNConfig(readout=readout), seed=3)
    cells = [*tiny_structures, tiny_structures[2] * (2, 1, 1)]
    batch = Batch.from_data_list([structure_to_graph(s, config=GraphConfig(cutoff=6.0)) for s in cells])
    with torch.no_grad():  # grad mode off but not inference mode: propagate runs
        reference = model(batch)
    with torch.inference_mode():
        fast = model(batch)
    assert torch.equal(reference, fast)


def test_training_still_gets_gradients(tiny_structures: list[Structure]) -> None:
    model = build_cgcnn(CGCNNConfig(n_layers=1), seed=0).train()
    batch = Batch.from_data_list([structure_to_graph(s) for s in tiny_structures[:2]])
    model(batch).sum().backward()
    grads = [p.grad for p in model.convs[0].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)
