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


@pytest.mark.parametrize("cutoff", [0.5, 3.0, 7.5])
def test_compiled_and_python_loops_give_the_same_arrays(cutoff: float) -> None:
    from crystalrep.graphs.cells import gathered, stacked
    from crystalrep.graphs.neighbors import _library

    if _library() is None:
        pytest.skip("the compiled loop was not built here (no C compiler at install)")
    cells = [(lattice, np.full(len(pos), 6), pos @ np.linalg.inv(lattice)) for pos, lattice in random_cells(120, seed=7)]
    twin = (np.eye(3) * 3.0, [6, 6, 8], np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.5, 0.5, 0.5]]))
    empty = (np.eye(3) * 4.0, np.zeros(0, np.int64), np.zeros((0, 3)))
    batch = [empty, *cells[:60], twin, empty, *cells[60:]]
    lattices, _, frac, atoms = gathered(batch)
    nl = neighbor_list(cutoff)
    for reserve in (None, 0.0):
        if reserve is not None:
            nl._per_atom = reserve  # no reserve: every cell with edges makes the arrays grow
        c_pos, c_out, c_edges = nl.compute_many(frac, lattices, atoms, compiled=True)
        if reserve is not None:
            nl._per_atom = reserve
        py_pos, py_out, py_edges = nl.compute_many(frac, lattices, atoms, compiled=False)
        assert c_pos.tobytes() == py_pos.tobytes() == stacked(batch)[2].tobytes()  # the C sums round as NumPy's
        assert c_edges.dtype == py_edges.dtype == np.int64 and c_edges.tolist() == py_edges.tolist()
        assert int(c_edges.sum()) == c_out[0].shape[1]
        for got, want in zip(c_out, py_out, strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous
            np.testing.assert_array_equal(got, want)
        assert float(c_out[2].min(initial=1.0)) > 1e-8  # the twin's coincident pair is dropped


def test_the_compiled_loop_is_built_where_there_is_a_c_compiler() -> None:
    import shutil
    import sysconfig
    from pathlib import Path

    from crystalrep.graphs.neighbors import _library

    if not (shutil.which("cc") or shutil.which("gcc")) or not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        pytest.skip("no C compiler or Python headers: the package installs without the compiled loop")
    assert _library() is not None, "pip install -e . should have built crystalrep/graphs/_cells.c"


HOSTILE = {  # lattice rows, fractional coordinates: each crashed (SIGFPE) or hung vesin before the check
    "1e200 Å cube": ([[1e200, 0, 0], [0, 1e200, 0], [0, 0, 1e200]], [[0, 0, 0]]),
    "one 1e20 Å edge": ([[1e20, 0, 0], [0, 5, 0], [0, 0, 5]], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "1e-3 Å thin and skewed": ([[5, 0, 0], [5, 1e-3, 0], [0, 0, 5]], [[0, 0, 0]]),
    "1e-5 Å cube": ([[1e-5, 0, 0], [0, 1e-5, 0], [0, 0, 1e-5]], [[0, 0, 0]]),
    "zero lattice": ([[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0]]),
}


def _hostile_child() -> None:  # run in a child: a regression would kill or hang the process
    import json
    import sys

    from crystalrep.graphs import arrays_to_graph, batch_edges
    from crystalrep.graphs.cells import gathered

    good = (np.eye(3) * 4.0, [11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])
    said = {}
    for name, (lattice, frac) in HOSTILE.items():
        cell = (np.array(lattice, float), np.full(len(frac), 6), np.array(frac, float))
        many = gathered([good, cell])
        calls = {"batch_edges": lambda c=cell: batch_edges([good, c]),
                 "arrays_to_graph": lambda c=cell: arrays_to_graph(*c),
                 "12 nearest": lambda c=cell: arrays_to_graph(*c, config=GraphConfig(cutoff=8.0, max_neighbors=12)),
                 "compute_many python": lambda m=many: neighbor_list(6.0).compute_many(m[2], m[0], m[3], compiled=False),
                 "compute_many compiled": lambda m=many: neighbor_list(6.0).compute_many(m[2], m[0], m[3])}
        for call, fn in calls.items():
            try:
                fn()
                said[f"{name} / {call}"] = None
            except ValueError as exc:
                said[f"{name} / {call}"] = str(exc)
    elongated = (np.diag([1500.0, 0.5, 20.0]), [6], np.array([[0.1, 0.2, 0.3]]))  # vesin: SIGFPE at 0.5 Å
    for call, fn in {"batch_edges": lambda: batch_edges([good, elongated], config=GraphConfig(cutoff=0.5)),
                     "arrays_to_graph": lambda: arrays_to_graph(*elongated, config=GraphConfig(cutoff=0.5))}.items():
        try:
            fn()
            said[f"elongated at 0.5 Å / {call}"] = None
        except ValueError as exc:
            said[f"elongated at 0.5 Å / {call}"] = str(exc)
    json.dump(said, sys.stdout)


def test_hostile_lattices_get_one_sentence_not_a_crash_or_a_hang() -> None:
    import json
    import subprocess
    import sys

    code = "from tests.graphs.test_neighbors import _hostile_child; _hostile_child()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the child died (signal {-done.returncode}): {done.stderr[-500:]}"
    said = json.loads(done.stdout)
    assert len(said) == 5 * len(HOSTILE) + 2
    assert "too elongated for vesin's cell list" in said["elongated at 0.5 Å / batch_edges"]
    for where, message in said.items():
        if where.endswith("12 nearest") and message is None:
            continue  # it searches a small radius first: the thin cell's 12 nearest came back in bounded time
        assert message is not None, f"{where}: accepted"
        assert "cannot build neighbour list" in message and message.count(".") <= 3 and len(message) < 300, message
    assert all(said[f"{name} / batch_edges"].startswith("cell 1: ") for name in HOSTILE)  # the good cell is fine


def test_c_and_python_cell_checks_agree() -> None:
    from crystalrep.graphs.neighbors import _BOUNDS, _library, search_problem

    lib = _library()
    if lib is None:
        pytest.skip("the compiled loop was not built here")
    import ctypes

    rng = np.random.default_rng(11)
    refused = 0
    for _ in range(4000):
        scale = 10.0 ** rng.uniform(-4, 6, 3)
        lattice = np.diag(scale) + rng.normal(0, 1, (3, 3)) * scale[:, None] * rng.choice([0, 0.3, 1.0])
        if rng.random() < 0.1:  # exactly flat or degenerate
            lattice[2] = lattice[0] * rng.choice([0.0, 1.0, -2.0])
        atoms, radius = int(rng.integers(0, 600)), float(rng.choice([0.5, 6.0, 8.0, 20.0]))
        lattice = np.ascontiguousarray(lattice)
        code = lib.crystalrep_cell_check(lattice.ctypes.data, atoms, radius, ctypes.addressof(_BOUNDS))
        problem = search_problem(lattice, atoms, radius)
        assert (code == 0) == (problem is None), (lattice.tolist(), atoms, radius, code, problem)
        refused += code != 0
    assert 400 < refused < 3600  # both sides of the bounds were exercised


def test_real_sized_cells_are_within_the_bounds() -> None:
    from crystalrep.graphs.neighbors import search_problem

    # the extremes the importers' limits document: 158 Å edges, 1.39 Å between faces, 4.8 Å³ per atom, 500 atoms
    assert search_problem(np.diag([158.0, 158.0, 158.0]), 500, 8.0) is None
    assert search_problem(np.array([[6.0, 0, 0], [0, 6.0, 0], [0, 0, 1.39]]), 10, 8.0) is None
    dense = np.eye(3) * (4.8 * 500) ** (1 / 3)
    assert search_problem(dense, 500, 8.0) is None
