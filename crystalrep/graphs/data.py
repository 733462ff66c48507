"""Crystal graphs as torch_geometric ``Data`` (one cell) and ``Batch`` (many cells)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.data.storage import GlobalStorage

from crystalrep.graphs.batch import batch_edges
from crystalrep.graphs.cells import Cell, prepared
from crystalrep.graphs.config import DEFAULT, GraphConfig
from crystalrep.graphs.edges import cell_edges
from crystalrep.structures import StructureError


class _HasArrays(Protocol):
    def __len__(self) -> int: ...

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@functools.cache
def _data_attributes() -> dict[str, Any]:
    """What ``Data()`` puts in a new instance's ``__dict__`` besides its storage."""
    return {key: value for key, value in Data().__dict__.items() if key != "_store"}


def _data(fields: dict[str, Any]) -> Data:
    # Data(**fields) dispatches each key through __setattr__ and Data() alone runs three
    # __init__s, together longer than the neighbour search of a small cell; this fills the
    # same two objects directly (a test checks the result equals the constructor's)
    data, store = Data.__new__(Data), GlobalStorage.__new__(GlobalStorage)
    store.__dict__.update(_mapping=fields, _parent=weakref.ref(data))
    data.__dict__.update(_data_attributes(), _store=store)
    return data


def _fields(z: np.ndarray, pos: np.ndarray, lattices: np.ndarray, index: np.ndarray, shift: np.ndarray,
            dist: np.ndarray, vec: np.ndarray) -> dict[str, Any]:
    """The tensors of a graph (or of a batch, with ``lattices`` ``[B, 3, 3]``) in ``Data``'s field order."""
    return {
        "edge_index": torch.from_numpy(index),
        "pos": torch.from_numpy(pos.astype(np.float32)),
        "z": torch.from_numpy(z),
        "cell": torch.from_numpy(lattices.astype(np.float32).reshape(-1, 3, 3)),
        "edge_shift": torch.from_numpy(shift.astype(np.float32)),
        "edge_vec": torch.from_numpy(vec.astype(np.float32)),
        "distance": torch.from_numpy(dist.astype(np.float32)),
    }


def arrays_to_graph(
    lattice: np.ndarray,
    numbers: np.ndarray | Sequence[int],
    frac_coords: np.ndarray,
    *,
    config: GraphConfig = DEFAULT,
) -> Data:
    """Build the periodic graph of one crystal from plain arrays.

    Edges follow pymatgen's ``get_neighbor_list`` convention: an edge ``(i, j, S)`` joins
    centre ``i`` to the image of ``j`` shifted by ``S`` cells, ``vec = pos[j] + S @ cell -
    pos[i]``, and a neighbour at exactly the cutoff is included.

    Args:
        lattice: Lattice vectors as rows, shape (3, 3), Å.
        numbers: Atomic numbers, shape (n,).
        frac_coords: Fractional coordinates, shape (n, 3).
        config: Cutoff and optional neighbour limit.

    Returns:
        ``Data`` with ``z`` (long [n]), ``pos`` (float32 [n, 3], Å), ``cell`` (float32
        [1, 3, 3]), ``edge_index`` (long [2, E], row 0 centre, row 1 neighbour),
        ``edge_shift`` (float32 [E, 3], integer cell shifts), ``edge_vec`` (float32 [E, 3]),
        ``distance`` (float32 [E]) and ``num_nodes``. Edges are grouped by centre.

    Raises:
        ValueError: If the arrays have wrong shapes or non-finite values, or a singular lattice.
    """
    lattice, z, pos = prepared(lattice, numbers, frac_coords)
    index, shift, dist, vec = cell_edges(pos, lattice, config)
    return _data({**_fields(z, pos, lattice, index, shift, dist, vec), "num_nodes": len(z)})


def structure_to_graph(structure: Any, *, config: GraphConfig = DEFAULT) -> Data:
    """Build the periodic graph of an ordered pymatgen ``Structure`` (see :func:`arrays_to_graph`).

    Raises:
        StructureError: If the structure has partially occupied (disordered) sites.
    """
    if not structure.is_ordered:
        raise StructureError("cannot build a graph of a disordered structure; order it first.")
    lattice, numbers = structure.lattice.matrix, structure.atomic_numbers
    return arrays_to_graph(lattice, numbers, structure.frac_coords, config=config)


def dataset_graphs(
    dataset: _HasArrays,
    *,
    config: GraphConfig = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> list[Data]:
    """Build the graph of every crystal in a dataset, in order.

    Args:
        dataset: Anything with ``__len__`` and ``arrays(i) -> (lattice, numbers, frac)``,
            such as :class:`crystalrep.datasets.Dataset`.
        config: Cutoff and optional neighbour limit.
        progress: Called as ``progress(done, total)`` after each crystal.

    Returns:
        One ``Data`` per crystal, as built by :func:`arrays_to_graph`.
    """
    total, graphs = len(dataset), []
    for idx in range(total):
        graphs.append(arrays_to_graph(*dataset.arrays(idx), config=config))
        if progress is not None:
            progress(idx + 1, total)
    return graphs


def arrays_to_batch(cells: Sequence[Cell], *, config: GraphConfig = DEFAULT) -> Batch:
    """One collated graph of many crystals, equal to ``Batch.from_data_list`` of their graphs.

    The tensors are built once for the whole batch from :func:`~crystalrep.graphs.batch_edges`
    instead of one ``Data`` per crystal and a collation (a test checks every field, ``batch``,
    ``ptr`` and the per-crystal slices against the per-cell graphs).

    Args:
        cells: ``(lattice, numbers, frac_coords)`` per crystal.
        config: Cutoff and optional neighbour limit.

    Returns:
        A torch_geometric ``Batch`` with the fields of :func:`arrays_to_graph`.
    """
    eb = batch_edges(cells, config=config)
    n = len(eb.atoms)
    node_ptr = torch.from_numpy(np.concatenate([[0], np.cumsum(eb.atoms)]))
    edge_ptr = torch.from_numpy(np.concatenate([[0], np.cumsum(eb.edges)]))
    batch = Batch(_base_cls=Data)
    batch._store._mapping.update(
        **_fields(eb.z, eb.pos, eb.lattices, eb.index, eb.shift, eb.dist, eb.vec),
        num_nodes=int(node_ptr[-1]),
        batch=torch.from_numpy(np.repeat(np.arange(n), eb.atoms)),
        ptr=node_ptr,
    )
    nodes, zeros = ("pos", "z"), torch.zeros(n, dtype=torch.long)
    per_edge = ("edge_index", "edge_shift", "edge_vec", "distance")
    batch._store._num_nodes = eb.atoms.tolist()
    batch._num_graphs = n
    batch._slice_dict = {key: node_ptr if key in nodes else edge_ptr if key in per_edge else torch.arange(n + 1)
                         for key in ("edge_index", "pos", "z", "cell", "edge_shift", "edge_vec", "distance")}
    batch._inc_dict = {key: node_ptr[:-1] if key == "edge_index" else zeros for key in batch._slice_dict}
    return batch
