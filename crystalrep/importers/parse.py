"""Parse import items into plain arrays, in this process or in 2 forked ones.

An item is ``(label, kind, payload)``: kind ``cif|poscar|json|extxyz`` with text, or
``arrays`` with ``(cell, atomic numbers, cartesian positions)``. A failure is returned as the
StructureError sentence without its ``label: `` prefix, never raised: an exception of any other
type from a third-party parser is turned into such a sentence too, so one row never aborts an
import, and every sentence is one line of at most ``max_message_chars``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from crystalrep.importers.bounded import clip
from crystalrep.structures import StructureError, read_structures, validate_structure

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Parsed = tuple[np.ndarray, np.ndarray, np.ndarray]
PARALLEL_MIN_ROWS = 500
CHUNK = 100
MAX_Z = 118
# What parsing a kind imports on first use (vesin, for validation, pulls in torch: seconds).
_MODULES = {"cif": ("pymatgen.io.cif",), "poscar": ("pymatgen.io.vasp",), "extxyz": ("ase.io", "pymatgen.io.ase")}


def warm_imports(kinds: set[str]) -> None:
    """Import the parsers of ``kinds`` now, before any per-file time budget starts.

    The budget interrupts the parsing thread wherever it is; an import it interrupts leaves a
    half-initialised module behind (seen: torch, then a crash), so slow first imports happen here.
    """
    import importlib

    for name in ("vesin", *sorted({m for kind in kinds for m in _MODULES.get(kind, ())})):
        importlib.import_module(name)


def _strip_source(message: str, label: str) -> str:
    return message[len(label) + 2:] if message.startswith(f"{label}: ") else message


def parse_item(item: tuple[str, str, Any], *, max_atoms: int | None = None) -> Parsed | str:
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
        return clip(_strip_source(str(exc), label))
    # pymatgen, spglib and ase raise many unrelated types on hostile input (ValueError from a
    # cython array, ZeroDivisionError, MemoryError, ...): the row is reported, the import goes on.
    except Exception as exc:  # noqa: BLE001 - third-party parser boundary
        log.debug("%s: %s", label, exc, exc_info=True)
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        return clip(f"is not a readable structure ({type(exc).__name__}{': ' + first[:120] if first else ''}).")
    return _checked(structure)


def _checked(structure: Any) -> Parsed | str:
    """The arrays a dataset stores, or why they cannot be stored (what validation let through)."""
    try:
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    except (AttributeError, ValueError, OverflowError, TypeError):
        return "a site holds no single chemical element."
    if not len(numbers) or numbers.min() < 1 or numbers.max() > MAX_Z:
        return "a site holds a species that is not a chemical element."
    lattice = np.array(structure.lattice.matrix, dtype=np.float64)
    frac = np.array(structure.frac_coords, dtype=np.float64)
    if not (np.isfinite(lattice).all() and np.isfinite(frac).all()):
        return "the lattice or the coordinates are not finite numbers."
    return lattice, numbers, frac


def _free_cores() -> float:
    """Cores not busy now (1-minute load); a second process only helps if one is free."""
    cores = os.cpu_count() or 1
    return cores - os.getloadavg()[0] if hasattr(os, "getloadavg") else cores - 1


def _parse_chunk(chunk: Sequence[tuple[str, str, Any]], max_atoms: int | None) -> list[Parsed | str]:
    return [parse_item(item, max_atoms=max_atoms) for item in chunk]


def parse_all(items: Sequence[tuple[str, str, Any]], *, max_atoms: int | None = None,
              workers: int | None = None, progress: Progress | None = None,
              total: int | None = None) -> list[Parsed | str]:
    """Parse items in order; ``workers=None`` forks 2 processes above 500 items when a core is free."""
    import threading

    n, total = len(items), total or len(items)
    warm_imports({kind for _, kind, _ in items})
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
