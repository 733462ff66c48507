"""Reference crystals and comparisons shared by the graph tests (pymatgen is the reference)."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

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


def rng_cluster() -> np.ndarray:
    return np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1], [0.1, 0.1, 0], [0.1, 0, 0.1], [0, 0.1, 0.1]])


def random_cells(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(positions, lattice) of random triclinic cells with 1-12 atoms."""
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        lattice = np.diag(rng.uniform(2.5, 7.0, 3)) + rng.uniform(-1.0, 1.0, (3, 3))
        frac = rng.uniform(-0.2, 1.2, (int(rng.integers(1, 13)), 3))
        cells.append((frac @ lattice, lattice))
    return cells




def as_cells(structures: list[Structure]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(lattice, numbers, frac)`` per structure, as the array API takes them."""
    return [(s.lattice.matrix, np.array(s.atomic_numbers), s.frac_coords) for s in structures]
