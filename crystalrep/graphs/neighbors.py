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
import importlib
import math
import threading
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any, cast

import numpy as np
import vesin

from crystalrep.graphs.cells import NON_FINITE, positions
from crystalrep.graphs.config import TOL
from crystalrep.graphs.errors import CellError

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


class _Bounds(ctypes.Structure):  # struct Bounds of _cells.c
    _fields_ = (("max_length", ctypes.c_double), ("max_edges", ctypes.c_double), ("max_work", ctypes.c_double))


MAX_LENGTH = 1e4
"""Longest lattice vector a search takes, in Å (vesin divides by zero near 1e20 Å; real: <= 158 Å)."""
MAX_EDGES = 5e6
"""Most neighbour pairs one cell may be expected to have at mean density (~300 MB of output;
real: 500 atoms at 8 Å give ~2.5e5)."""
MAX_WORK = 2e7
"""Most periodic images times atoms one search may visit (a cell thinner than the radius needs
many images along its thin side; real at 8 Å: <= 2,197 x 500)."""
_BOUNDS = _Bounds(MAX_LENGTH, MAX_EDGES, MAX_WORK)


VESIN_MAX_CELLS = 1e5  # MAX_NUMBER_OF_CELLS in vesin's cpu_cell_list.cpp


def _cell_list_collapses(reach: tuple[float, float, float]) -> bool:
    """Whether vesin's cell list would get 0 bins along an axis and divide by zero (SIGFPE).

    ``reach`` is radius / distance between opposite faces per axis. vesin bins each axis into
    ``max(1, trunc(distance / radius))`` cells; above 1e5 in all it scales the three counts
    down, keeping their ratios and truncating each, and a very elongated cell truncates one
    to 0. Counts are tried one either side of a near-integer quotient, since vesin's face
    distances may round differently from ours.
    """
    counts = [{max(1.0, math.trunc(x * (1 - 1e-9))), max(1.0, math.trunc(x * (1 + 1e-9)))}
              for x in (1.0 / q if q > 0 else math.inf for q in reach)]
    if any(math.isinf(c) for axis in counts for c in axis):
        return True
    for n0 in counts[0]:
        for n1 in counts[1]:
            for n2 in counts[2]:
                if n0 * n1 * n2 > VESIN_MAX_CELLS:
                    xy, yz = n0 / n1, n1 / n2
                    c2 = math.trunc(math.cbrt(VESIN_MAX_CELLS / (xy * yz * yz)))
                    c1 = math.trunc(yz * c2)
                    if min(c2, c1, math.trunc(xy * c1)) < 1:
                        return True
    return False


def search_problem(lattice: np.ndarray, atoms: int, radius: float, *, max_work: float = MAX_WORK) -> str | None:
    """Why vesin should not search a cell within ``radius`` (one sentence), or ``None``.

    Checked before every search, so no direct call of the graph API can crash the process
    or run for hours, whatever the importers' limits let through. The same rule is
    ``crystalrep_cell_check`` in ``_cells.c``. ``max_work`` bounds periodic images times
    atoms (lower it for a library that builds every image, as dscribe does).
    """
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = lattice.tolist()
    faces = ((by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx),
             (cy * az - cz * ay, cz * ax - cx * az, cx * ay - cy * ax),
             (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx))
    volume = abs(ax * faces[0][0] + ay * faces[0][1] + az * faces[0][2])
    images, reaches = 1.0, []
    for (x, y, z), (fx, fy, fz) in zip(((ax, ay, az), (bx, by, bz), (cx, cy, cz)), faces, strict=True):
        if not math.sqrt(x * x + y * y + z * z) <= MAX_LENGTH:
            return f"a lattice vector is longer than {MAX_LENGTH:g} Å or not finite"
        reach = radius * math.sqrt(fx * fx + fy * fy + fz * fz) / volume if volume else math.inf  # radius / height
        images *= 2.0 * math.ceil(reach) + 1.0 if reach < 1e300 else math.inf
        reaches.append(reach)
    if atoms == 0:
        return None
    if not volume:
        return "the lattice vectors span no volume"
    edges = atoms * atoms * 4.0 / 3.0 * math.pi * radius * radius * radius / volume  # the order of _cells.c
    if not edges <= MAX_EDGES:
        return (f"{atoms} atom{'s' * (atoms != 1)} in {volume:.3g} Å³ would make ~{edges:.2g} neighbour pairs within {radius:g} Å "
                f"(at most {MAX_EDGES:g})")
    if _cell_list_collapses((reaches[0], reaches[1], reaches[2])):
        return (f"the cell is too elongated for vesin's cell list at {radius:g} Å (vesin divides by zero on "
                "such cells); reduce the cell or change the radius")
    if not images * atoms <= max_work:
        return (f"the cell is so thin that the search would visit ~{images:.2g} periodic images for each of "
                f"{atoms} atom{'s' * (atoms != 1)} (at most {max_work:g} images x atoms)")
    return None


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The extension built from ``_cells.c``; ``None`` where it was not built.

    The extension is optional (``setup.py``): on a machine without a C compiler the package
    installs without it and :meth:`NeighborList.compute_many` walks the cells from Python.
    """
    try:
        extension = importlib.import_module("crystalrep.graphs._cells")
    except ImportError:
        return None
    lib = ctypes.CDLL(extension.__file__)
    lib.crystalrep_cells.restype = lib.crystalrep_cell_check.restype = _INT
    lib.crystalrep_cells.argtypes = (*(_P,) * 10, ctypes.c_int64, ctypes.c_double, ctypes.c_int64, *(_P,) * 6)
    lib.crystalrep_cell_check.argtypes = (_P, ctypes.c_int64, ctypes.c_double, _P)
    return lib


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
        lib = _library()  # the cell check in C where built: ~1 µs a cell against ~3 µs in Python
        self._check, self._bounds = (lib.crystalrep_cell_check if lib else None), ctypes.addressof(_BOUNDS)
        # the compiled loop's first arguments: vesin's function, then this object's structs
        self._loop_args = (ctypes.cast(cast(Any, self.call), _P).value, *map(ctypes.addressof, (
            _PERIODIC, self._options, _BOUNDS, self._result, self._error)))
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
        n, box, cutoff = len(pos), _address(lattice), self._options.cutoff
        refused = self._check(box, n, cutoff, self._bounds) if self._check else search_problem(lattice, n, cutoff)
        if refused:
            raise ValueError(f"cannot build neighbour list: {search_problem(lattice, n, cutoff)}.")
        if self.call(_address(pos), n, box, *self.args) != 0:
            raise self._failed()
        r, e = self._result, self._result.length
        if e == 0:
            return np.empty((0, 2), np.uint64), np.empty((0, 3), np.int32), np.empty(0), np.empty((0, 3))
        return (np.asarray(_Buffer(r.pairs, (e, 2), "=u8")), np.asarray(_Buffer(r.shifts, (e, 3), "=i4")),
                np.asarray(_Buffer(r.distances, (e,), "=f8")), np.asarray(_Buffer(r.vectors, (e, 3), "=f8")))

    def compute_many(self, frac: np.ndarray, lattices: np.ndarray, atoms: Sequence[int] | np.ndarray, *,
                     compiled: bool = True) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Positions and edges of consecutive cells in fresh arrays, atoms numbered through them.

        Args:
            frac: Fractional coordinates of all cells, float64 ``[N, 3]``.
            lattices: float64 ``[B, 3, 3]``.
            atoms: Atoms per cell (``sum == N``).
            compiled: Walk the cells in the compiled loop where it was built (``False``: the
                Python loop, which gives the same arrays).

        Returns:
            ``(pos [N, 3], [index [2, E] int64, shift [E, 3] int32, dist [E], vec [E, 3]],
            edges per cell int64 [B])``: positions as :func:`~crystalrep.graphs.cells.positions`
            makes them; edges by cell, then centre; coincident points (distance <= ``TOL``)
            dropped.

        Raises:
            CellError: For the first cell with non-finite values, outside :func:`search_problem`'s
                bounds, or refused by vesin.
        """
        lib = _library() if compiled else None
        if lib is None:
            pos = positions(frac, lattices, atoms)
            (index, *rest), edges = self._python_loop(pos, lattices, atoms)
        else:
            frac, lattices = np.ascontiguousarray(frac, np.float64), np.ascontiguousarray(lattices, np.float64)
            pos = np.empty_like(frac)
            (index, *rest), edges = self._c_loop(lib.crystalrep_cells, frac, pos, lattices, atoms)
        total = index.shape[1]
        if total:
            self._per_atom = 1.2 * total / len(pos)
        # an overestimated reserve is given back rather than kept alive by views
        return pos, [index, *(a[:total] if 2 * total >= len(a) else a[:total].copy() for a in rest)], edges

    def _reserve(self, atoms: int) -> int:
        """Edge rows to allocate first: from the edges per atom of the previous batch."""
        return int(atoms * self._per_atom) + 16

    def _c_loop(self, loop: Callable[..., int], frac: np.ndarray, pos: np.ndarray, lattices: np.ndarray,
                atoms: Sequence[int] | np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """All cells in ``crystalrep_cells`` (``_cells.c``), growing the arrays when it asks."""
        counts, cells, cap = np.ascontiguousarray(atoms, dtype=np.int64), len(atoms), self._reserve(len(pos))
        work = np.zeros(cells + 4, np.int64)  # edges per cell, then the loop's state (4)
        edges, state, at = work[:cells], work[cells:], _address(work)
        out: list[np.ndarray] = [np.empty(2 * cap, np.int64), np.empty((cap, 3), np.int32), np.empty(cap),
                                 np.empty((cap, 3))]
        fixed = (*self._loop_args, _address(frac), _address(pos), _address(lattices), _address(counts), cells, TOL)
        while (status := loop(*fixed, cap, *map(_address, out), at, at + 8 * cells)) == 1:
            total, old = int(state[2]), cap
            cap = max(2 * cap, total + int(state[3]))  # state[3]: the edges of the cell that did not fit
            grown = [np.empty(2 * cap, np.int64), *(np.empty((cap, *a.shape[1:]), a.dtype) for a in out[1:])]
            grown[0][:total], grown[0][cap:cap + total] = out[0][:total], out[0][old:old + total]
            for a, b in zip(out[1:], grown[1:], strict=True):
                b[:total] = a[:total]
            out = grown
        if status == -3:
            raise CellError(int(state[0]), NON_FINITE)
        if status == -2:
            problem = search_problem(lattices[state[0]], int(counts[state[0]]), self._options.cutoff)
            raise CellError(int(state[0]), f"cannot build neighbour list: {problem}.")
        if status != 0:
            raise CellError(int(state[0]), str(self._failed()))
        total = int(state[2])
        index = out[0][:2 * total] if 4 * total >= len(out[0]) else out[0][:2 * total].copy()
        return [index.reshape(2, total), *out[1:]], edges

    def _python_loop(self, pos: np.ndarray, lattices: np.ndarray,
                     atoms: Sequence[int] | np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """All cells from Python, one ctypes call and four copies per cell (where no compiler was)."""
        atoms, out = np.asarray(atoms, dtype=np.int64).tolist(), _empty(self._reserve(len(pos)))
        dst = [_address(a) for a in out]
        call, args, r, move = self.call, self.args, self._result, ctypes.memmove
        p, box, total, edges = _address(pos), _address(lattices), 0, [0] * len(atoms)
        for b, n in enumerate(atoms):
            problem = search_problem(lattices[b], n, self._options.cutoff)
            if problem is not None:
                raise CellError(b, f"cannot build neighbour list: {problem}.")
            if call(p, n, box, *args) != 0:
                raise CellError(b, str(self._failed()))
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
        # [E, 2] uint64 within each cell -> [2, E] int64 through the batch, in one pass per row
        ij, index = out[0][:total].view(np.int64), np.empty((2, total), np.int64)
        first = np.repeat(np.fromiter(accumulate(atoms[:-1], initial=0), np.int64, len(atoms)), edges)
        np.add(ij[:, 0], first, out=index[0])
        np.add(ij[:, 1], first, out=index[1])
        shift, dist, vec = out[1:]
        if dist[:total].min(initial=np.inf) <= TOL:  # coincident points, not neighbours
            keep = dist[:total] > TOL
            kept = np.bincount(np.repeat(np.arange(len(atoms)), edges)[keep], minlength=len(atoms))
            index, shift, dist, vec = (np.ascontiguousarray(index[:, keep]), shift[:total][keep], dist[:total][keep],
                                       vec[:total][keep])
            return [index, shift, dist, vec], kept.astype(np.int64)
        return [index, shift, dist, vec], np.array(edges, dtype=np.int64)


_local = threading.local()


def neighbor_list(radius: float) -> NeighborList:
    """One reusable calculator per thread and radius (each holds vesin's output buffers)."""
    cache: dict[float, NeighborList] = _local.__dict__.setdefault("lists", {})
    if radius not in cache:
        cache[radius] = NeighborList(radius + TOL)
    return cache[radius]
