"""Periodic crystal graphs: vesin neighbour lists turned into torch_geometric ``Data``.

The hot path works on plain arrays (lattice, atomic numbers, fractional coordinates) and
never builds pymatgen objects. Edges follow pymatgen's ``get_neighbor_list`` convention:
an edge ``(i, j, S)`` joins centre ``i`` to the image of ``j`` shifted by ``S`` cells,
``vec = pos[j] + S @ cell - pos[i]``, and a neighbour at exactly the cutoff is included.

One crystal becomes a ``Data`` (:func:`arrays_to_graph`); many become one set of concatenated
arrays (:func:`batch_edges`) or one collated ``Batch`` (:func:`arrays_to_batch`), equal to the
per-cell graphs collated by ``Batch.from_data_list`` but with every tensor built once per batch.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import vesin
from torch_geometric.data import Batch, Data

from crystalrep.structures import StructureError

# pymatgen counts a neighbour at distance r + tol as inside r; we match it so the two agree.
_TOL = 1e-8

@dataclass(frozen=True)
class GraphConfig:
    """How a crystal becomes a graph.

    Attributes:
        cutoff: Neighbour radius in Å (inclusive); may exceed the cell size.
        max_neighbors: If set, keep only this many nearest neighbours per centre (edges are
            then ordered by centre, distance, neighbour index, shift).
    """

    cutoff: float = 6.0
    max_neighbors: int | None = None

    def __post_init__(self) -> None:
        if not self.cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff!r}.")
        if self.max_neighbors is not None and self.max_neighbors < 1:
            raise ValueError(f"max_neighbors must be None or >= 1, got {self.max_neighbors!r}.")


class _HasArrays(Protocol):
    def __len__(self) -> int: ...

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


# vesin's C API (vesin.h). Its Python ``compute`` builds options, copies and converts inputs
# and wraps outputs on every call, which for a 5-atom cell costs about as much as the search
# itself; here the arguments are prepared once per thread and radius.
_P, _BOOL, _INT = ctypes.c_void_p, ctypes.c_bool, ctypes.c_int


class _Options(ctypes.Structure):  # struct VesinOptions
    _fields_ = (("cutoff", ctypes.c_double), ("full", _BOOL), ("sorted", _BOOL), ("algorithm", _INT),
                ("skin", ctypes.c_double), ("n_threads", ctypes.c_int32), ("return_shifts", _BOOL),
                ("return_distances", _BOOL), ("return_vectors", _BOOL))


class _Device(ctypes.Structure):  # struct VesinDevice
    _fields_ = (("type", _INT), ("device_id", _INT))


class _Result(ctypes.Structure):  # struct VesinNeighborList, arrays as plain addresses
    _fields_ = (("length", ctypes.c_size_t), ("device", _Device), ("pairs", _P), ("shifts", _P),
                ("distances", _P), ("vectors", _P), ("opaque", _P))


_CPU, _PERIODIC = _Device(1, 0), (_BOOL * 3)(True, True, True)


@functools.cache
def _vesin_c() -> tuple[Callable[..., int], Callable[..., None]]:
    """``vesin_neighbors`` and ``vesin_free`` from the library the vesin package loaded."""
    lib, result = vesin.get_library(), ctypes.POINTER(_Result)
    neighbors = ctypes.CFUNCTYPE(_INT, _P, ctypes.c_size_t, _P, _P, _Device, _Options, result,
                                 ctypes.POINTER(ctypes.c_char_p))
    return neighbors(("vesin_neighbors", lib)), ctypes.CFUNCTYPE(None, result)(("vesin_free", lib))


class _Buffer:
    """Memory at an address, shown to NumPy through the array interface (no copy)."""

    __slots__ = ("__array_interface__",)

    def __init__(self, address: int, shape: tuple[int, ...], typestr: str) -> None:
        self.__array_interface__ = {"data": (address, True), "shape": shape, "typestr": typestr, "version": 3}


class _NeighborList:
    """One thread's vesin buffers for one radius: full list, sorted by centre, one thread.

    For crystals of <= 500 atoms vesin's threading costs more than it saves; callers
    parallelise over structures instead.
    """

    def __init__(self, radius: float) -> None:
        self._neighbors, self._free = _vesin_c()
        self._options = _Options(radius, True, True, 0, 0.0, 1, True, True, True)
        self._result, self._error = _Result(), ctypes.c_char_p()
        self._args = (ctypes.addressof(_PERIODIC), _CPU, self._options, ctypes.byref(self._result),
                      ctypes.byref(self._error))

    def __del__(self) -> None:
        free = getattr(self, "_free", None)  # absent if __init__ failed
        if free is not None:
            free(ctypes.byref(self._result))

    def compute(self, pos: np.ndarray, lattice: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(pairs [E, 2] uint64, shift [E, 3] int32, dist [E], vec [E, 3])`` of one crystal.

        The arrays are views of this object's buffers, valid until its next call; ``pos`` and
        ``lattice`` must be C-contiguous float64.
        """
        if self._neighbors(pos.ctypes.data, len(pos), lattice.ctypes.data, *self._args) != 0:
            raise ValueError(f"cannot build neighbour list: {(self._error.value or b'').decode()}.")
        r, e = self._result, self._result.length
        if e == 0:
            return np.empty((0, 2), np.uint64), np.empty((0, 3), np.int32), np.empty(0), np.empty((0, 3))
        return (np.asarray(_Buffer(r.pairs, (e, 2), "=u8")), np.asarray(_Buffer(r.shifts, (e, 3), "=i4")),
                np.asarray(_Buffer(r.distances, (e,), "=f8")), np.asarray(_Buffer(r.vectors, (e, 3), "=f8")))


_local = threading.local()


def _neighbor_list(radius: float) -> _NeighborList:
    """One reusable calculator per thread and radius (each holds vesin's output buffers)."""
    cache: dict[float, _NeighborList] = _local.__dict__.setdefault("lists", {})
    if radius not in cache:
        cache[radius] = _NeighborList(radius + _TOL)
    return cache[radius]


def _nearest(i: np.ndarray, j: np.ndarray, shift: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` nearest edges per centre, ordered by distance, then j, then shift."""
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], j, dist, i))
    centres = i[order]
    rank = np.arange(len(order)) - np.searchsorted(centres, centres, side="left")
    return order[rank < k]


def _edges(pos: np.ndarray, lattice: np.ndarray, radius: float) -> tuple[np.ndarray, ...]:
    """``(index [2, E] int64, shift, dist, vec)`` of every pair within ``radius``, by centre.

    ``shift``, ``dist`` and ``vec`` may be views of vesin's buffers: callers copy them (astype,
    indexing) before this thread's calculator for ``radius`` runs again.
    """
    pairs, shift, dist, vec = _neighbor_list(radius).compute(pos, lattice)
    index = pairs.T.astype(np.int64, order="C")
    if dist.min(initial=np.inf) <= _TOL:  # coincident points carry no direction; drop them like self-pairs
        keep = dist > _TOL
        return np.ascontiguousarray(index[:, keep]), shift[keep], dist[keep], vec[keep]
    return index, shift, dist, vec


def _edges_within_k(pos: np.ndarray, lattice: np.ndarray, cutoff: float, k: int) -> tuple:
    """Pairs within ``cutoff`` that surely hold each centre's ``k`` nearest.

    Searching the whole cutoff wastes most edges (8 Å, 12 neighbours keeps a tenth), so start
    where ~1.5k neighbours fit at mean density and widen while a centre has fewer than ``k``;
    all pairs outside a radius holding ``k`` per centre are farther, so the result is exact.
    """
    n = len(pos)
    volume = abs(float(np.linalg.det(lattice)))
    radius = (4.5 * k * volume / (4 * np.pi * max(n, 1))) ** (1 / 3)
    while True:
        radius = min(np.ceil(radius * 2) / 2, cutoff)  # a 0.5 Å grid bounds the cache
        edges = _edges(pos, lattice, radius)
        if radius >= cutoff or np.bincount(edges[0][0], minlength=n).min(initial=k) >= k:
            return edges
        radius *= 1.5


def _checked(lattice: np.ndarray, numbers: np.ndarray | Sequence[int], frac_coords: np.ndarray) -> tuple:
    """``(lattice, z, frac)`` as C-contiguous float64 / a fresh int64 copy, shapes and values checked."""
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    frac = np.asarray(frac_coords, dtype=np.float64)
    z = np.array(numbers, dtype=np.int64)  # a copy: z is the one tensor not converted anyway
    if lattice.shape != (3, 3) or frac.shape != (len(z), 3):
        raise ValueError(f"expected lattice (3, 3), numbers (n,) and frac_coords (n, 3), got "
                         f"{lattice.shape}, {z.shape} and {frac.shape}.")
    if not (np.isfinite(lattice).all() and np.isfinite(frac).all()):
        raise ValueError("lattice and frac_coords must be finite.")
    return lattice, z, frac


def _cell_edges(pos: np.ndarray, lattice: np.ndarray, config: GraphConfig) -> tuple[np.ndarray, ...]:
    """``(index [2, E], shift, dist, vec)`` of one cell under ``config`` (may be vesin's views)."""
    k = config.max_neighbors
    if k is None:
        return _edges(pos, lattice, config.cutoff)
    index, shift, dist, vec = _edges_within_k(pos, lattice, config.cutoff, k)
    sel = _nearest(index[0], index[1], shift, dist, k)
    return np.ascontiguousarray(index[:, sel]), shift[sel], dist[sel], vec[sel]


def _data(fields: dict[str, Any]) -> Data:
    # filled in one step: Data(**fields) dispatches each key through __setattr__, which takes
    # longer than the neighbour search for a small cell (a test checks the two agree)
    data = Data()
    data._store._mapping.update(fields)
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
    config: GraphConfig = GraphConfig(),
) -> Data:
    """Build the periodic graph of one crystal from plain arrays.

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
    lattice, z, frac = _checked(lattice, numbers, frac_coords)
    pos = frac @ lattice
    index, shift, dist, vec = _cell_edges(pos, lattice, config)
    return _data({**_fields(z, pos, lattice, index, shift, dist, vec), "num_nodes": len(z)})


def structure_to_graph(structure: Any, *, config: GraphConfig = GraphConfig()) -> Data:
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
    config: GraphConfig = GraphConfig(),
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


def batch_edges(cells: Sequence[tuple[np.ndarray, Any, np.ndarray]], *, config: GraphConfig = GraphConfig()) -> EdgeBatch:
    """The edges of many crystals in one set of arrays (what :func:`arrays_to_graph` finds per cell).

    Args:
        cells: ``(lattice, numbers, frac_coords)`` per crystal.
        config: Cutoff and optional neighbour limit.

    Raises:
        ValueError: As :func:`arrays_to_graph`, for the first bad cell.
    """
    lattices, zs, positions, parts = [], [], [], []
    for cell in cells:
        lattice, z, frac = _checked(*cell)
        pos = frac @ lattice
        # vesin's outputs are views of buffers its next call overwrites: copy each cell's
        parts.append([np.array(a) for a in _cell_edges(pos, lattice, config)])
        lattices.append(lattice)
        zs.append(z)
        positions.append(pos)
    atoms = np.array([len(z) for z in zs], dtype=np.int64)
    edges = np.array([p[0].shape[1] for p in parts], dtype=np.int64)
    index = np.concatenate([p[0] for p in parts], axis=1) if parts else np.zeros((2, 0), np.int64)
    index += np.repeat(np.cumsum(atoms) - atoms, edges)
    return EdgeBatch(
        z=np.concatenate(zs) if zs else np.zeros(0, np.int64),
        pos=np.concatenate(positions) if positions else np.zeros((0, 3)),
        lattices=np.stack(lattices) if lattices else np.zeros((0, 3, 3)),
        index=index,
        shift=np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 3), np.int32),
        dist=np.concatenate([p[2] for p in parts]) if parts else np.zeros(0),
        vec=np.concatenate([p[3] for p in parts]) if parts else np.zeros((0, 3)),
        atoms=atoms,
        edges=edges,
    )


def arrays_to_batch(cells: Sequence[tuple[np.ndarray, Any, np.ndarray]], *, config: GraphConfig = GraphConfig()) -> Batch:
    """One collated graph of many crystals, equal to ``Batch.from_data_list`` of their graphs.

    The tensors are built once for the whole batch from :func:`batch_edges` instead of one
    ``Data`` per crystal and a collation (a test checks every field, ``batch``, ``ptr`` and
    the per-crystal slices against the per-cell graphs).

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
