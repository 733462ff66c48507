"""vesin's C API called directly agrees with vesin's Python API, per cell and many cells a call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crystalrep.graphs import GraphConfig, arrays_to_graph
from crystalrep.graphs.neighbors import neighbor_list
from tests.graphs.reference import random_cells


@pytest.mark.parametrize("cutoff", [0.5, 3.0, 7.5])
def test_direct_vesin_call_equals_vesin_python_api(cutoff: float) -> None:
    import vesin

    reference = vesin.NeighborList(cutoff=cutoff + 1e-8, full_list=True, sorted=True, n_threads=1)
    for pos, lattice in random_cells(25):
        ours = neighbor_list(cutoff).compute(pos, lattice)
        i, j, shift, dist, vec = reference.compute(pos, lattice, periodic=True, quantities="ijSdD")
        for got, want in zip(ours, (np.stack((i, j), axis=1), shift, dist, vec), strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)  # same C routine, same order


def test_threads_get_their_own_buffers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    cells = [(lattice, np.full(len(pos), 14), pos @ np.linalg.inv(lattice)) for pos, lattice in random_cells(40, seed=3)]
    serial = [arrays_to_graph(*c, config=GraphConfig(cutoff=5.0)) for c in cells]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda c: arrays_to_graph(*c, config=GraphConfig(cutoff=5.0)), cells * 3))
    for data, ref in zip(threaded, serial * 3, strict=True):
        assert torch.equal(data.edge_index, ref.edge_index) and torch.equal(data.distance, ref.distance)
