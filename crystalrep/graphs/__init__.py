"""Periodic crystal graphs: vesin neighbour lists turned into torch_geometric ``Data``.

The hot path works on plain arrays (lattice, atomic numbers, fractional coordinates) and
never builds pymatgen objects. Edges follow pymatgen's ``get_neighbor_list`` convention:
an edge ``(i, j, S)`` joins centre ``i`` to the image of ``j`` shifted by ``S`` cells,
``vec = pos[j] + S @ cell - pos[i]``, and a neighbour at exactly the cutoff is included.

One crystal becomes a ``Data`` (:func:`arrays_to_graph`); many become one set of concatenated
arrays (:func:`batch_edges`) or one collated ``Batch`` (:func:`arrays_to_batch`), equal to the
per-cell graphs collated by ``Batch.from_data_list`` but with every tensor built once per batch.

Modules: ``config`` (:class:`GraphConfig`), ``neighbors`` (vesin's C API), ``cells`` (input
checks, Cartesian positions), ``edges`` (one cell's edges), ``batch`` (many cells' edges),
``data`` (``Data`` / ``Batch`` construction).
"""

from crystalrep.graphs.batch import EdgeBatch, batch_edges
from crystalrep.graphs.config import GraphConfig
from crystalrep.graphs.data import (
    arrays_to_batch,
    arrays_to_graph,
    dataset_graphs,
    structure_to_graph,
)

__all__ = [
    "EdgeBatch",
    "GraphConfig",
    "arrays_to_batch",
    "arrays_to_graph",
    "batch_edges",
    "dataset_graphs",
    "structure_to_graph",
]
