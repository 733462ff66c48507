"""The edges of one cell: the k nearest neighbours, ties and the widening search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalrep.graphs import GraphConfig, structure_to_graph
from crystalrep.graphs.edges import nearest
from tests.graphs.reference import CELLS, assert_vectors_consistent, graph_edges, rng_cluster


@pytest.mark.parametrize("name", ["cscl", "triclinic", "simple_cubic_a2"])
def test_max_neighbors_keepsnearest(name: str) -> None:
    structure, k = CELLS[name], 5
    full = structure_to_graph(structure, config=GraphConfig(cutoff=6.0))
    capped = structure_to_graph(structure, config=GraphConfig(cutoff=6.0, max_neighbors=k))
    assert_vectors_consistent(capped)
    assert graph_edges(capped).items() <= graph_edges(full).items()
    for centre in range(len(structure)):
        all_d = np.sort(full.distance[full.edge_index[0] == centre].numpy())
        kept = capped.distance[capped.edge_index[0] == centre].numpy()
        assert len(kept) == min(k, len(all_d))
        np.testing.assert_allclose(np.sort(kept), all_d[:k])
    again = structure_to_graph(structure, config=GraphConfig(cutoff=6.0, max_neighbors=k))
    assert torch.equal(again.edge_index, capped.edge_index)
    assert torch.equal(again.edge_shift, capped.edge_shift)


def test_nearest_breaks_ties_by_neighbour_then_shift() -> None:
    rng = np.random.default_rng(0)
    n, k, e = 6, 4, 300
    i, j = np.sort(rng.integers(0, n, e)), rng.integers(0, n, e)
    shift = rng.integers(-2, 3, (e, 3))
    dist = rng.integers(1, 5, e).astype(float)  # integer distances: ties everywhere
    key = sorted(range(e), key=lambda x: (i[x], dist[x], j[x], *shift[x]))
    expected = [x for c in range(n) for x in [y for y in key if i[y] == c][:k]]
    assert nearest(i, j, shift, dist, k).tolist() == expected


def test_max_neighbors_search_widens_for_sparse_centres() -> None:
    # seven atoms in a tight cluster and one alone in the middle of a 12 Å cell: the first
    # radius (from mean density) holds the cluster's neighbours but not the lone atom's
    frac = np.vstack([rng_cluster(), [[0.5, 0.5, 0.5]]])
    structure = Structure(Lattice.cubic(12.0), ["C"] * 7 + ["Fe"], frac)
    capped = structure_to_graph(structure, config=GraphConfig(cutoff=12.0, max_neighbors=4))
    full = structure_to_graph(structure, config=GraphConfig(cutoff=12.0))
    assert graph_edges(capped).items() <= graph_edges(full).items()
    for centre in range(len(structure)):
        all_d = np.sort(full.distance[full.edge_index[0] == centre].numpy())
        kept = np.sort(capped.distance[capped.edge_index[0] == centre].numpy())
        np.testing.assert_allclose(kept, all_d[:4])
    assert float(capped.distance[capped.edge_index[0] == 7].min()) > 8.0
