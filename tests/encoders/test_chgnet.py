"""The frozen CHGNet pass, with repeated edges computed once, equals CHGNet's own forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalrep.encoders import get_encoder
from crystalrep.encoders.chgnet_graph import batch_graph, repeated_edges


@pytest.mark.slow
@pytest.mark.parametrize("idle_bonds_skipped", [True, False])
def test_merged_edges_equal_chgnet_forward(tiny_structures: list[Structure], idle_bonds_skipped: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if not idle_bonds_skipped:  # the general path: every bond through each bond convolution's tail
        monkeypatch.setattr("crystalrep.encoders.chgnet._keeps_idle_bonds", lambda layer, feas: False)
    perovskite = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                           [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    distorted = perovskite.copy()
    distorted.translate_sites([1], [0.01, 0.02, -0.015])
    sample = [perovskite, perovskite * (1, 2, 1), distorted, *tiny_structures]
    cells = [(s.lattice.matrix, np.array(s.atomic_numbers), s.frac_coords) for s in sample]
    g = batch_graph(cells)
    updated = np.zeros(len(g.undirected2directed), dtype=bool)
    updated[g.bond_graph[:, [1, 3]].ravel()] = True
    lengths = np.linalg.norm(np.einsum("ej,ejk->ek", g.frac[g.atom_graph[:, 1]] + g.image - g.frac[g.atom_graph[:, 0]],
                                       g.lattices[np.repeat(np.arange(len(g.atoms)), g.atoms)[g.atom_graph[:, 0]]]),
                             axis=1).astype(np.float32)[g.undirected2directed]
    _, count = repeated_edges(g.atom_graph, g.directed2undirected, lengths, updated)
    assert len(count) < len(g.atom_graph) / 2  # the cubic cells repeat most edges: the test exercises merging

    encoder = get_encoder("chgnet")
    model = encoder.load("cpu")
    got = encoder.embed_structures(sample, device="cpu")
    with torch.inference_mode():
        pred = model([model.graph_converter(s) for s in sample], task="e", return_crystal_feas=True)
    ref = (pred["crystal_fea"] / pred["atoms_per_graph"][:, None]).numpy()
    assert (np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)).max() < 1e-5
