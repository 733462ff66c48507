"""Periodic graphs agree edge-for-edge with pymatgen's neighbour list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystalrep.graphs import (
    GraphConfig,
    arrays_to_batch,
    arrays_to_graph,
    batch_edges,
    dataset_graphs,
    structure_to_graph,
)
from crystalrep.structures import StructureError

TRICLINIC = Structure(
    Lattice.from_parameters(3.1, 3.7, 4.3, 81, 97, 104),
    ["Si", "O", "O", "Mg"],
    [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5], [0.55, 0.45, 0.25]],
)
CELLS = {
    "simple_cubic_a2": Structure(Lattice.cubic(2.0), ["Po"], [[0, 0, 0]]),
    "cscl": Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "triclinic": TRICLINIC,
    # coordinates outside [0, 1) must keep their own shift convention
    "unwrapped": Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[1.2, -0.3, 0.1], [0.5, 0.5, 2.5]]),
}


def edge_map(i, j, shift, dist) -> dict[tuple[int, int, tuple[int, ...]], float]:
    """{(centre, neighbour, image shift): distance} from any neighbour-list arrays."""
    shifts = np.rint(np.asarray(shift)).astype(int)
    return {
        (int(a), int(b), tuple(s)): float(d)
        for a, b, s, d in zip(np.asarray(i), np.asarray(j), shifts, np.asarray(dist), strict=True)
    }


def graph_edges(data) -> dict[tuple[int, int, tuple[int, ...]], float]:
    return edge_map(data.edge_index[0], data.edge_index[1], data.edge_shift, data.distance)


def pymatgen_edges(structure: Structure, cutoff: float):
    return edge_map(*structure.get_neighbor_list(r=cutoff))


def assert_same_edges(data, structure: Structure, cutoff: float) -> None:
    ours, ref = graph_edges(data), pymatgen_edges(structure, cutoff)
    assert len(ours) == data.edge_index.shape[1], "duplicate edges"
    assert ours.keys() == ref.keys()
    diff = max((abs(ours[k] - ref[k]) for k in ref), default=0.0)
    assert diff < 1e-5


def assert_vectors_consistent(data) -> None:
    i, j = data.edge_index
    expected = data.pos[j] + data.edge_shift @ data.cell[0] - data.pos[i]
    torch.testing.assert_close(data.edge_vec, expected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(data.distance, data.edge_vec.norm(dim=1), atol=1e-4, rtol=1e-5)


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


@pytest.mark.parametrize("name", ["cscl", "triclinic", "simple_cubic_a2"])
def test_max_neighbors_keeps_nearest(name: str) -> None:
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
    from crystalrep.graphs import _nearest

    rng = np.random.default_rng(0)
    n, k, e = 6, 4, 300
    i, j = np.sort(rng.integers(0, n, e)), rng.integers(0, n, e)
    shift = rng.integers(-2, 3, (e, 3))
    dist = rng.integers(1, 5, e).astype(float)  # integer distances: ties everywhere
    key = sorted(range(e), key=lambda x: (i[x], dist[x], j[x], *shift[x]))
    expected = [x for c in range(n) for x in [y for y in key if i[y] == c][:k]]
    assert _nearest(i, j, shift, dist, k).tolist() == expected


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


def rng_cluster() -> np.ndarray:
    return np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1], [0.1, 0.1, 0], [0.1, 0, 0.1], [0, 0.1, 0.1]])


@pytest.mark.parametrize("kwargs", [{"cutoff": 0.0}, {"cutoff": -1.0}, {"max_neighbors": 0}])
def test_invalid_config_raises(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GraphConfig(**kwargs)


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


def test_bad_arrays_raise() -> None:
    with pytest.raises(ValueError, match="expected lattice"):
        arrays_to_graph(np.eye(3), [1, 2], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="neighbour list"):
        arrays_to_graph(np.zeros((3, 3)), [1], np.zeros((1, 3)))


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


def random_cells(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(positions, lattice) of random triclinic cells with 1-12 atoms."""
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        lattice = np.diag(rng.uniform(2.5, 7.0, 3)) + rng.uniform(-1.0, 1.0, (3, 3))
        frac = rng.uniform(-0.2, 1.2, (int(rng.integers(1, 13)), 3))
        cells.append((frac @ lattice, lattice))
    return cells


@pytest.mark.parametrize("cutoff", [0.5, 3.0, 7.5])
def test_direct_vesin_call_equals_vesin_python_api(cutoff: float) -> None:
    import vesin

    from crystalrep.graphs import _neighbor_list

    reference = vesin.NeighborList(cutoff=cutoff + 1e-8, full_list=True, sorted=True, n_threads=1)
    for pos, lattice in random_cells(25):
        ours = _neighbor_list(cutoff).compute(pos, lattice)
        i, j, shift, dist, vec = reference.compute(pos, lattice, periodic=True, quantities="ijSdD")
        for got, want in zip(ours, (np.stack((i, j), axis=1), shift, dist, vec), strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)  # same C routine, same order


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


def test_threads_get_their_own_buffers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    cells = [(lattice, np.full(len(pos), 14), pos @ np.linalg.inv(lattice)) for pos, lattice in random_cells(40, seed=3)]
    serial = [arrays_to_graph(*c, config=GraphConfig(cutoff=5.0)) for c in cells]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda c: arrays_to_graph(*c, config=GraphConfig(cutoff=5.0)), cells * 3))
    for data, ref in zip(threaded, serial * 3, strict=True):
        assert torch.equal(data.edge_index, ref.edge_index) and torch.equal(data.distance, ref.distance)


def _cells(structures: list[Structure]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [(s.lattice.matrix, np.array(s.atomic_numbers), s.frac_coords) for s in structures]


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


def test_batch_reports_the_bad_cell() -> None:
    good = _cells([CELLS["cscl"]])[0]
    with pytest.raises(ValueError, match="must be finite"):
        arrays_to_batch([good, (good[0], good[1], np.full((2, 3), np.nan))])
