"""The neighbour lists of many crystals in one set of arrays (the path the embedders take).

The cells' shapes are checked and their arrays stacked with a few whole-batch NumPy calls;
then one loop over the cells (:meth:`~crystalrep.graphs.neighbors.NeighborList.compute_many`,
compiled where a C compiler was at install) makes each cell's Cartesian positions, checks them,
runs vesin, and copies the edges out, numbering atoms through the batch and dropping
coincident points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crystalrep.graphs.cells import Cell, gathered, positions
from crystalrep.graphs.config import DEFAULT, GraphConfig
from crystalrep.graphs.edges import cell_edges
from crystalrep.graphs.errors import CellError
from crystalrep.graphs.neighbors import neighbor_list


@dataclass(frozen=True)
class EdgeBatch:
    """The neighbour lists of many crystals, concatenated; atoms are numbered through the batch.

    Attributes:
        z: Atomic numbers, int64 ``[N]``.
        pos: Cartesian positions, float64 ``[N, 3]``.
        lattices: Lattice vectors as rows, float64 ``[B, 3, 3]``.
        index: ``[2, E]`` int64, row 0 centre, row 1 neighbour; edges by crystal, then centre.
        shift: Integer cell shifts, int32 ``[E, 3]``.
        dist: Distances, float64 ``[E]``.
        vec: ``pos[j] + shift @ cell - pos[i]``, float64 ``[E, 3]``.
        atoms: Atoms per crystal, int64 ``[B]``.
        edges: Edges per crystal, int64 ``[B]``.
    """

    z: np.ndarray
    pos: np.ndarray
    lattices: np.ndarray
    index: np.ndarray
    shift: np.ndarray
    dist: np.ndarray
    vec: np.ndarray
    atoms: np.ndarray
    edges: np.ndarray


def _capped_edges(pos: np.ndarray, lattices: np.ndarray, atoms: list[int], config: GraphConfig) -> tuple:
    """``([index, shift, dist, vec], edges)`` with ``max_neighbors``, one cell at a time."""
    parts, start = [], 0
    for b, (lattice, n) in enumerate(zip(lattices, atoms, strict=True)):
        try:
            index, shift, dist, vec = cell_edges(pos[start:start + n], lattice, config)
        except ValueError as exc:
            raise CellError(b, str(exc)) from None
        parts.append((index + start, np.array(shift), np.array(dist), np.array(vec)))
        start += n
    edges = [p[0].shape[1] for p in parts]
    if not parts:
        return [np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int32), np.zeros(0), np.zeros((0, 3))], edges
    return [np.concatenate([p[0] for p in parts], axis=1),
            *(np.concatenate([p[k] for p in parts]) for k in (1, 2, 3))], edges


def batch_edges(cells: Sequence[Cell], *, config: GraphConfig = DEFAULT) -> EdgeBatch:
    """The edges of many crystals in one set of arrays (what ``arrays_to_graph`` finds per cell).

    Args:
        cells: ``(lattice, numbers, frac_coords)`` per crystal.
        config: Cutoff and optional neighbour limit.

    Raises:
        CellError: A ``ValueError`` for the first bad cell, naming its position (``.cell``).
    """
    lattices, z, frac, sizes = gathered(cells)
    atoms = np.array(sizes, dtype=np.int64)
    if config.max_neighbors is not None:
        pos = positions(frac, lattices, sizes)
        (index, shift, dist, vec), edges = _capped_edges(pos, lattices, sizes, config)
    else:
        pos, (index, shift, dist, vec), edges = neighbor_list(config.cutoff).compute_many(frac, lattices, atoms)
    return EdgeBatch(z=z, pos=pos, lattices=lattices, index=index, shift=shift, dist=dist, vec=vec,
                     atoms=atoms, edges=np.asarray(edges, dtype=np.int64))
