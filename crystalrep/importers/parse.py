"""Parse import items into plain arrays, in this process or in 2 forked ones.

An item is ``(label, kind, payload)``: kind ``cif|poscar|json|extxyz`` with text, or
``arrays`` with ``(cell, atomic numbers, cartesian positions)``. A failure is returned as the
StructureError sentence without its ``label: `` prefix, never raised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from crystalrep.structures import MAX_ATOMS, StructureError, read_structures, validate_structure

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Parsed = tuple[np.ndarray, np.ndarray, np.ndarray]
PARALLEL_MIN_ROWS = 500
CHUNK = 100


def _strip_source(message: str, label: str) -> str:
    return message[len(label) + 2:] if message.startswith(f"{label}: ") else message


def parse_item(item: tuple[str, str, Any], *, max_atoms: int = MAX_ATOMS) -> Parsed | str:
    """Parse one ``(label, kind, payload)`` item into plain arrays, or return the reason it failed."""
    label, kind, payload = item
    try:
        if kind == "arrays":
            from pymatgen.core import Lattice, Structure

            cell, numbers, cart = payload
            try:
                structure = Structure(Lattice(cell), list(numbers), cart, coords_are_cartesian=True)
            except (ValueError, KeyError, IndexError) as exc:
                raise StructureError(f"{label}: is not a valid structure ({exc}).") from exc
            structure = validate_structure(structure, source=label, max_atoms=max_atoms)
        else:
            structure = read_structures(label, text=payload, fmt=kind, max_atoms=max_atoms)[0]
    except StructureError as exc:
        return _strip_source(str(exc), label)
    return (np.array(structure.lattice.matrix, dtype=np.float64),
            np.array(structure.atomic_numbers, dtype=np.int64),
            np.array(structure.frac_coords, dtype=np.float64))


def _free_cores() -> float:
    """Cores not busy now (1-minute load); a second process only helps if one is free."""
    cores = os.cpu_count() or 1
    return cores - os.getloadavg()[0] if hasattr(os, "getloadavg") else cores - 1


def _parse_chunk(chunk: Sequence[tuple[str, str, Any]], max_atoms: int) -> list[Parsed | str]:
    return [parse_item(item, max_atoms=max_atoms) for item in chunk]


def parse_all(items: Sequence[tuple[str, str, Any]], *, max_atoms: int = MAX_ATOMS,
              workers: int | None = None, progress: Progress | None = None,
              total: int | None = None) -> list[Parsed | str]:
    """Parse items in order; ``workers=None`` forks 2 processes above 500 items when a core is free."""
    import threading

    n, total = len(items), total or len(items)
    if workers is None:
        workers = 2 if n > PARALLEL_MIN_ROWS and _free_cores() >= 1 else 1
    chunks = [items[i:i + CHUNK] for i in range(0, n, CHUNK)]
    work = partial(_parse_chunk, max_atoms=max_atoms)
    results: list[Parsed | str] = []
    # Only fork: spawn/forkserver re-run an unguarded __main__ script; forking a threaded
    # parent (Streamlit, a test server) can deadlock, so threaded callers parse serially.
    if workers > 1 and threading.active_count() == 1 and os.name == "posix":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
                for part in ex.map(work, chunks):
                    results.extend(part)
                    if progress is not None:
                        progress(len(results), total)
            return results
        except (BrokenProcessPool, OSError) as exc:
            log.warning("parallel parsing failed (%s); parsing in this process", exc)
            results = []
    for chunk in chunks:
        results.extend(work(chunk))
        if progress is not None:
            progress(len(results), total)
    return results
