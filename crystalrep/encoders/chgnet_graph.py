"""CHGNet's graphs built with vesin and NumPy instead of Python loops, many crystals at once.

CHGNet's own converter (pymatgen neighbour list, C graph, then a Python loop over bonds for the
angle list) costs ~2 ms per small crystal. :func:`batch_graph` builds the same graphs for a whole
batch: one vesin search per cell (:func:`crystalrep.graphs.batch_edges`), then, on the
concatenated arrays, the pairing of each edge with its reverse into an undirected bond, bonds up
to the bond cutoff as nodes of the line graph, and one angle for every ordered pair of distinct
bonds at an atom. Only the order of the angle rows differs from CHGNet's, which its sums do not
see (tests check the features against CHGNet's own). :func:`build_crystal_graph` returns one
crystal's graph as CHGNet's ``CrystalGraph``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from chgnet.graph import CrystalGraph

__all__ = ["GraphBatch", "IsolatedAtomError", "batch_graph", "build_crystal_graph", "repeated_edges"]


def _pair_reverse(keys: np.ndarray, reverse_keys: np.ndarray) -> np.ndarray:
    """For each edge, the index of the edge with the reversed key."""
    order = np.argsort(keys, kind="stable")
    pos = np.searchsorted(keys[order], reverse_keys)
    pos = np.minimum(pos, len(keys) - 1)
    partner = order[pos]
    if len(keys) and not np.array_equal(keys[partner], reverse_keys):
        raise ValueError("The neighbour list is not symmetric; cannot pair bonds for CHGNet.")
    return partner


def _angles(centre: np.ndarray, first: np.ndarray, second: np.ndarray, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (e1 in first, e2 in second) with the same centre and e1 != e2."""
    second = second[np.argsort(centre[second], kind="stable")]
    counts = np.bincount(centre[second], minlength=n_atoms)
    starts = np.cumsum(counts) - counts
    reps = counts[centre[first]]
    e1 = np.repeat(first, reps)
    offsets = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    e2 = second[np.repeat(starts[centre[first]], reps) + offsets]
    keep = e1 != e2
    return e1[keep], e2[keep]


class GraphBatch(NamedTuple):
    """CHGNet's graphs of many crystals, concatenated (atoms, edges and bonds numbered through the batch).

    Attributes:
        numbers: Atomic numbers ``[N]``.
        frac: Fractional coordinates ``[N, 3]``.
        lattices: ``[B, 3, 3]``.
        atoms: Atoms per crystal ``[B]``.
        atom_graph: Directed edges ``[E, 2]`` (centre, neighbour).
        image: Cell shift of each edge's neighbour ``[E, 3]``.
        directed2undirected: Bond of each edge ``[E]``.
        undirected2directed: The edge that made each bond ``[U]``.
        bond_graph: Angles ``[A, 5]``: centre atom, bond i, edge i, bond j, edge j.
    """

    numbers: np.ndarray
    frac: np.ndarray
    lattices: np.ndarray
    atoms: np.ndarray
    atom_graph: np.ndarray
    image: np.ndarray
    directed2undirected: np.ndarray
    undirected2directed: np.ndarray
    bond_graph: np.ndarray


class IsolatedAtomError(ValueError):
    """An atom has no neighbour within the atom-graph cutoff (CHGNet refuses such crystals).

    Attributes:
        crystal: Position of the crystal in the batch.
    """

    def __init__(self, crystal: int, cutoff: float) -> None:
        super().__init__(f"An atom has no neighbour within {cutoff} Å; CHGNet cannot embed it.")
        self.crystal = crystal


def batch_graph(
    cells: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    atom_cutoff: float = 6.0,
    bond_cutoff: float = 3.0,
) -> GraphBatch:
    """Build CHGNet's graphs of many crystals at once (one neighbour search per cell, the rest batched).

    Args:
        cells: ``(lattice, numbers, frac_coords)`` per crystal.
        atom_cutoff: Atom-graph radius (CHGNet 0.3.0: 6 Å).
        bond_cutoff: Bonds up to this length become line-graph nodes (CHGNet: 3 Å).

    Raises:
        IsolatedAtomError: If an atom has no neighbour within ``atom_cutoff``.
    """
    from crystalrep.graphs import GraphConfig, batch_edges

    # pymatgen's numerical_tol, as in CHGNet's converter, is crystalrep.graphs' own tolerance
    eb = batch_edges(cells, config=GraphConfig(cutoff=atom_cutoff))
    n_atoms = int(eb.atoms.sum())
    centre, neighbor = eb.index
    lonely = np.bincount(centre, minlength=n_atoms) == 0
    if lonely.any():
        owner = np.repeat(np.arange(len(eb.atoms)), eb.atoms)
        raise IsolatedAtomError(int(owner[np.argmax(lonely)]), atom_cutoff)
    image = eb.shift.astype(np.int64)
    span = int(np.abs(image).max(initial=0)) + 1
    base = 2 * span + 1
    shift = image + span

    def key(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
        return ((a * n_atoms + b) * base + s[:, 0]) * base * base + s[:, 1] * base + s[:, 2]

    partner = _pair_reverse(key(centre, neighbor, shift), key(neighbor, centre, 2 * span - shift))
    edges = np.arange(len(centre))
    owner = np.minimum(edges, partner)  # the bond is created by whichever direction comes first
    is_first = owner == edges
    directed2undirected = (np.cumsum(is_first) - 1)[owner]
    bond_len = eb.dist[owner]  # CHGNet keys a bond's length on its first direction
    e1, e2 = _angles(centre, np.flatnonzero(bond_len <= bond_cutoff), np.flatnonzero(eb.dist < bond_cutoff), n_atoms)
    frac = np.concatenate([np.asarray(c[2], dtype=np.float64) for c in cells]) if len(cells) else np.zeros((0, 3))
    return GraphBatch(
        numbers=eb.z, frac=frac, lattices=eb.lattices, atoms=eb.atoms,
        atom_graph=eb.index.T, image=image,
        directed2undirected=directed2undirected, undirected2directed=np.flatnonzero(is_first),
        bond_graph=np.stack([centre[e1], directed2undirected[e1], e1, directed2undirected[e2], e2], axis=1),
    )


def repeated_edges(atom_graph: np.ndarray, directed2undirected: np.ndarray, bond_length: np.ndarray,
                   updated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group the atom-graph edges whose messages agree in every layer; the first edge of each group and its size.

    An edge's message depends on its centre, its neighbour and its bond's features. A bond that no
    angle updates keeps features that are a function of its float32 length alone, so such edges
    group by (centre, neighbour, length bits); an updated bond's edges group by the bond itself
    (an atom and its own image seen through opposite shifts). Groups come sorted by centre.

    Args:
        atom_graph: Directed edges ``[E, 2]`` (centre, neighbour).
        directed2undirected: Bond of each edge ``[E]``.
        bond_length: float32 length of each bond ``[U]``, as the model computes it.
        updated: Whether each bond is updated by the bond convolutions ``[U]``.

    Returns:
        ``(first, count)``: for each group, its first edge and how many edges it stands for.
    """
    bits = np.ascontiguousarray(bond_length, dtype=np.float32).view(np.int32).astype(np.int64)
    value = np.where(updated, np.arange(len(bits)), bits)[directed2undirected]  # lengths > 0: bits >= 0
    flag = updated.astype(np.int64)[directed2undirected]
    n = int(atom_graph.max(initial=0)) + 1
    _, pair = np.unique(atom_graph[:, 0] * n + atom_graph[:, 1], return_inverse=True)
    _, first, count = np.unique(((pair.reshape(-1) * 2 + flag) << 32) | value, return_index=True, return_counts=True)
    return first, count


def build_crystal_graph(
    lattice: np.ndarray,
    numbers: np.ndarray,
    frac_coords: np.ndarray,
    *,
    atom_cutoff: float = 6.0,
    bond_cutoff: float = 3.0,
) -> CrystalGraph:
    """Build CHGNet's graph of one crystal from plain arrays.

    Args:
        lattice: Lattice vectors as rows (3, 3), Å.
        numbers: Atomic numbers (n,).
        frac_coords: Fractional coordinates (n, 3).
        atom_cutoff: Atom-graph radius (CHGNet 0.3.0: 6 Å).
        bond_cutoff: Bonds up to this length become line-graph nodes (CHGNet: 3 Å).

    Returns:
        A ``chgnet.graph.CrystalGraph`` ready for ``CHGNet.forward``.

    Raises:
        ValueError: If an atom has no neighbour within ``atom_cutoff`` (CHGNet refuses these).
    """
    import torch
    from chgnet.graph import CrystalGraph

    g = batch_graph([(lattice, numbers, frac_coords)], atom_cutoff=atom_cutoff, bond_cutoff=bond_cutoff)

    def t(a: np.ndarray, dtype: Any) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a).astype(dtype))

    return CrystalGraph(
        atomic_number=t(g.numbers, np.int32),
        atom_frac_coord=t(g.frac, np.float32),
        atom_graph=t(g.atom_graph, np.int32),
        atom_graph_cutoff=atom_cutoff,
        neighbor_image=t(g.image, np.float32),
        directed2undirected=t(g.directed2undirected, np.int32),
        undirected2directed=t(g.undirected2directed, np.int32),
        bond_graph=t(g.bond_graph, np.int32),
        bond_graph_cutoff=bond_cutoff,
        lattice=t(g.lattices[0], np.float32),
    )
