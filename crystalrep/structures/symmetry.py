"""Symmetry bounds: the operations a CIF block expands by, looked up once, and the atoms they would make.

pymatgen applies every operation to every listed site and merges the images afterwards (4 sites
× 10,000 operations took 34 s and 7.1 GB); here the operations and the expanded atom count are
bounded first, with numpy, before pymatgen expands anything.
"""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.limits import Limits, cell_problem, env_name
from crystalrep.structures.cif import site_fractions, site_rows
from crystalrep.structures.errors import StructureError

if TYPE_CHECKING:
    from pymatgen.io.cif import CifBlock

_SYMOPS: dict[tuple, tuple] = {}  # symmetry fields of a block -> (operations, warnings, notes)
_SYMOPS_LOCK = threading.Lock()


def symops(parser: Any, block: CifBlock) -> list[Any]:  # a CifParser: its attributes are untyped
    """The operations pymatgen will apply, looked up once per distinct symmetry description.

    pymatgen's parse would look them up again, and for a CIF that names only its space group
    that rebuilds the group from generators (0.5 s for Fm-3m; pymatgen caches only live
    groups). The parser is handed the same operations and warnings instead.
    """
    from pymatgen.io.cif import CifBlock

    noted_list: list[str] = parser.warnings
    magnetic = bool(parser.feature_flags.get("magcif"))
    key = None if magnetic else tuple(sorted(
        (k, v if isinstance(v, str) else tuple(v)) for k, v in block.data.items() if "symm" in k or "space_group" in k))
    with _SYMOPS_LOCK:
        found = _SYMOPS.get(key) if key is not None else None
    if found is None:
        n_noted = len(noted_list)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ops: list[Any]
            if magnetic:  # the magnetic lookup needs the sanitised block
                ops = parser.get_magsymops(CifBlock(next(iter(parser.as_dict().values())), [], "sanitised"))
            else:
                ops = parser.get_symops(block)
        found = (tuple(ops), tuple(str(w.message) for w in caught), tuple(noted_list[n_noted:]))
        del noted_list[n_noted:]
        if key is not None:
            with _SYMOPS_LOCK:
                _SYMOPS[key] = found
                while len(_SYMOPS) > 256:
                    _SYMOPS.pop(next(iter(_SYMOPS)))
    ops, messages, noted = found

    def again(_data: CifBlock) -> list[Any]:
        for message in messages:
            warnings.warn(message, stacklevel=2)
        noted_list.extend(noted)
        return list(ops)

    setattr(parser, "get_magsymops" if magnetic else "get_symops", again)
    return list(ops)


def _expanded_sites(ops: list[Any], frac: np.ndarray) -> int:
    """An upper bound on the atoms pymatgen makes from these sites, counted with numpy.

    Mirrors pymatgen's merging (a site that an operation maps onto an earlier site joins it;
    images closer than 1e-4 in fractional coordinates are one atom), so that a cell is refused
    before pymatgen spends seconds to minutes building it. The work is bounded by
    ``max_site_operations``, checked first.
    """
    rot = np.array([op.rotation_matrix for op in ops], dtype=float)
    shift = np.array([op.translation_vector for op in ops], dtype=float)
    kept = np.empty((0, 3))
    count = 0
    for site in frac:
        images = np.mod(rot @ site + shift, 1.0)  # (ops, 3)
        if len(kept) and _close(images[:, None, :], kept[None, :, :]).any():
            continue
        count += int((~np.triu(_close(images[:, None, :], images[None, :, :]), 1).any(axis=0)).sum())
        kept = np.vstack([kept, site])
    return count


def _close(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Whether fractional positions coincide under periodic boundaries (pymatgen's rule)."""
    diff = a - b
    return (np.abs(diff - np.round(diff)) < tol).all(axis=-1)


def check_symmetry(ops: list[Any], block: CifBlock, cell: np.ndarray | None, source: str, lim: Limits) -> None:
    """Refuse a block whose symmetry expansion would break a limit, before pymatgen expands it."""
    n_sites, n_ops = site_rows(block), len(ops)
    if n_ops > lim.max_symops:
        raise StructureError(f"{source}: {n_ops} symmetry operations exceed the limit of {lim.max_symops} "
                             f"({env_name('max_symops')}).")
    if n_sites * n_ops > lim.max_site_operations:
        raise StructureError(f"{source}: {n_sites} listed sites times {n_ops} symmetry operations exceed the limit "
                             f"of {lim.max_site_operations:,} ({env_name('max_site_operations')}).")
    frac = site_fractions(block, n_sites, source, lim)
    if frac is None:
        return  # unreadable coordinates: pymatgen refuses the block itself
    n_atoms = _expanded_sites(ops, frac)
    if n_atoms > lim.max_atoms:
        raise StructureError(f"{source}: {n_atoms} atoms exceed the limit of {lim.max_atoms} per cell "
                             f"({n_sites} listed sites expanded by symmetry; {env_name('max_atoms')}).")
    problem = cell_problem(cell, n_atoms, lim) if cell is not None and n_atoms else None
    if problem is not None:
        raise StructureError(f"{source}: {problem}.")
