"""vesin's neighbour search called through its C API, one cell or many cells per call.

vesin's Python ``compute`` builds options, copies and converts inputs and wraps outputs on
every call, which for a 5-atom cell costs about as much as the search itself; here the
arguments are prepared once per thread and radius, and :meth:`NeighborList.compute_many`
walks many cells with plain address arithmetic, copying each cell's output from vesin's
buffers into growing arrays (no per-cell NumPy objects).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import vesin

from crystalrep.graphs.config import TOL

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


def _address(a: np.ndarray) -> int:
    """The address of a C-contiguous array's data (``ndarray.ctypes.data`` costs ~8x more)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(cast(Any, a)))
    except (TypeError, ValueError):  # read-only or empty
        return int(a.ctypes.data)


def _empty(rows: int) -> list[np.ndarray]:
    """Uninitialised pairs, shifts, distances and vectors for ``rows`` edges."""
    return [np.empty((rows, 2), np.uint64), np.empty((rows, 3), np.int32), np.empty(rows),
            np.empty((rows, 3))]


class NeighborList:
    """One thread's vesin buffers for one radius: full list, sorted by centre, one thread.

    For crystals of <= 500 atoms vesin's threading costs more than it saves; callers
    parallelise over structures instead.
    """

    def __init__(self, radius: float) -> None:
        self.call, self._free = _vesin_c()
        self._options = _Options(radius, True, True, 0, 0.0, 1, True, True, True)
        self._result, self._error = _Result(), ctypes.c_char_p()
        self._per_atom = 0.4 * radius**3  # ~0.1 atoms / Å^3 within the sphere, until measured
        # everything after (points, n_points, box): ``self.call(pos_addr, n, box_addr, *self.args)``
        self.args = (ctypes.addressof(_PERIODIC), _CPU, self._options, ctypes.byref(self._result),
                     ctypes.byref(self._error))

    def __del__(self) -> None:
        free = getattr(self, "_free", None)  # absent if __init__ failed
        if free is not None:
            free(ctypes.byref(self._result))

    def _failed(self) -> ValueError:
        return ValueError(f"cannot build neighbour list: {(self._error.value or b'').decode()}.")

    def compute(self, pos: np.ndarray, lattice: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(pairs [E, 2] uint64, shift [E, 3] int32, dist [E], vec [E, 3])`` of one crystal.

        The arrays are views of this object's buffers, valid until its next call; ``pos`` and
        ``lattice`` must be C-contiguous float64.
        """
        if self.call(_address(pos), len(pos), _address(lattice), *self.args) != 0:
            raise self._failed()
        r, e = self._result, self._result.length
        if e == 0:
            return np.empty((0, 2), np.uint64), np.empty((0, 3), np.int32), np.empty(0), np.empty((0, 3))
        return (np.asarray(_Buffer(r.pairs, (e, 2), "=u8")), np.asarray(_Buffer(r.shifts, (e, 3), "=i4")),
                np.asarray(_Buffer(r.distances, (e,), "=f8")), np.asarray(_Buffer(r.vectors, (e, 3), "=f8")))

    def compute_many(self, pos: np.ndarray, lattices: np.ndarray,
                     atoms: Sequence[int]) -> tuple[list[np.ndarray], list[int]]:
        """The outputs of :meth:`compute` for consecutive cells, concatenated (fresh arrays).

        Args:
            pos: Cartesian positions of all cells, C-contiguous float64 ``[N, 3]``.
            lattices: C-contiguous float64 ``[B, 3, 3]``.
            atoms: Atoms per cell (``sum == N``).

        Returns:
            ``([pairs, shift, dist, vec], edges per cell)``; pairs number atoms within each cell.
        """
        # sized from the edges per atom of the previous batch; the arrays grow when that is short
        out = _empty(int(len(pos) * self._per_atom) + 16)
        dst = [_address(a) for a in out]
        call, args, r, move = self.call, self.args, self._result, ctypes.memmove
        p, box, total, edges = _address(pos), _address(lattices), 0, [0] * len(atoms)
        for b, n in enumerate(atoms):
            if call(p, n, box, *args) != 0:
                raise self._failed()
            e = r.length
            if e:  # rows of pairs (2 x u64), shifts (3 x i32), distances (f64), vectors (3 x f64)
                if total + e > len(out[0]):
                    grown = _empty(total + max(total, e))
                    for old, new in zip(out, grown, strict=True):
                        new[:total] = old[:total]
                    out, dst = grown, [_address(a) for a in grown]
                move(dst[0] + 16 * total, r.pairs, 16 * e)
                move(dst[1] + 12 * total, r.shifts, 12 * e)
                move(dst[2] + 8 * total, r.distances, 8 * e)
                move(dst[3] + 24 * total, r.vectors, 24 * e)
                total += e
                edges[b] = e
            p += 24 * n
            box += 72
        if total:
            self._per_atom = 1.2 * total / len(pos)
        # an overestimated reserve is given back rather than kept alive by views
        return [a[:total] if 2 * total >= len(a) else a[:total].copy() for a in out], edges


_local = threading.local()


def neighbor_list(radius: float) -> NeighborList:
    """One reusable calculator per thread and radius (each holds vesin's output buffers)."""
    cache: dict[float, NeighborList] = _local.__dict__.setdefault("lists", {})
    if radius not in cache:
        cache[radius] = NeighborList(radius + TOL)
    return cache[radius]
