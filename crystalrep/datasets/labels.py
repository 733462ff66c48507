"""Labels computed per crystal (spglib symmetry) and the kind of a property column.

The kind of a column (numeric or categorical) follows its values: numeric when at least 90% of
its non-missing values parse as numbers. :func:`kind_counts` gives the two counts that rule
decides on, so an import that sees a column in chunks adds them up and decides exactly as
:func:`property_column` would on the whole column.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.datasets.schema import BASE_COLUMNS, PropertyInfo

log = logging.getLogger(__name__)

_SPGLIB_ENV = {"SPGLIB_WARNING": "OFF", "SPGLIB_OLD_ERROR_HANDLING": "0"}


@contextmanager
def quiet_spglib() -> Iterator[None]:
    """Run spglib with its new error handling and without its C-level stderr lines.

    spglib 2.7-2.x warns (DeprecationWarning) on every call unless ``OLD_ERROR_HANDLING`` is
    off, in which case failures raise ``SpglibError`` instead of returning ``None``; spglib 3
    drops the switch. ``SPGLIB_WARNING=OFF`` (read by the C library on each call) stops lines
    such as "spglib: ssm_get_exact_positions failed." on stderr. Both are restored on exit.
    """
    import spglib.error

    has_switch = hasattr(spglib.error, "OLD_ERROR_HANDLING")
    previous: bool = spglib.error.OLD_ERROR_HANDLING if has_switch else False  # restored only if has_switch
    env = {key: os.environ.get(key) for key in _SPGLIB_ENV}
    if has_switch:
        spglib.error.OLD_ERROR_HANDLING = False
    os.environ.update(_SPGLIB_ENV)
    try:
        yield
    finally:
        if has_switch:
            spglib.error.OLD_ERROR_HANDLING = previous
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def symmetry_labels(structure: Any, *, symprec: float = 0.1) -> tuple[int, str]:
    """Return the spglib space-group number and crystal system (0, "unknown" if spglib fails).

    Only lattice, elements and positions are analysed: oxidation states, spins and site
    properties such as magmoms would split one element into several spglib types.
    """
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from spglib.error import SpglibError

    plain = Structure(structure.lattice, [site.species for site in structure], structure.frac_coords)
    plain.remove_oxidation_states()
    plain.remove_spin()
    try:
        with quiet_spglib():
            sga = SpacegroupAnalyzer(plain, symprec=symprec)
            return int(sga.get_space_group_number()), str(sga.get_crystal_system())
    except (ValueError, TypeError, RuntimeError, SpglibError) as exc:
        log.debug("spglib failed: %s", exc)
        return 0, "unknown"


def base_table(ids: Sequence[str], structures: Sequence[Any], *, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The built-in columns (id, formula, chemsys, spacegroup, crystal_system, nsites) of crystals.

    pymatgen's warnings (e.g. "No Pauling electronegativity for Ne") are logged, not shown.
    """
    rows = []
    with warnings.catch_warnings(record=True) as caught, quiet_spglib():
        warnings.simplefilter("always")
        for k, s in enumerate(structures):
            sg, system = symmetry_labels(s)
            comp = s.composition
            rows.append((ids[k], comp.reduced_formula, comp.chemical_system, sg, system, len(s)))
            if progress is not None:
                progress(k + 1, len(structures))
    for message in sorted({str(w.message) for w in caught}):
        log.debug("labelling warning: %s", message)
    table = pd.DataFrame(rows, columns=list(BASE_COLUMNS))
    table["spacegroup"] = table["spacegroup"].astype(np.int64)
    table["nsites"] = table["nsites"].astype(np.int64)
    return table


def _objects(values: Sequence[Any]) -> np.ndarray:
    raw = np.empty(len(values), dtype=object)  # numpy, not Series: ~10x less overhead per column
    for i, value in enumerate(values):
        raw[i] = value
    return raw


def _numbers(raw: np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=float) if len(raw) else np.zeros(0)


def kind_counts(values: Sequence[Any]) -> tuple[int, int]:
    """``(values that parse as numbers, values that are not missing)`` of one column."""
    raw = _objects(values)
    return int(np.count_nonzero(~np.isnan(_numbers(raw)))), int(np.count_nonzero(~pd.isna(raw)))


def kind_of(numeric: int, present: int) -> str:
    """The kind a column's counts (see :func:`kind_counts`) decide on."""
    return "numeric" if numeric >= max(1, int(0.9 * present)) else "categorical"


def resolve_info(name: str, kind: str, hint: PropertyInfo | None) -> PropertyInfo:
    """A column's info: the kind always follows the data, unit and description the hint."""
    if hint is not None and hint.kind != kind:
        log.info("property %r: values are %s, not %s as described; treated as %s", name, kind, hint.kind, kind)
    return PropertyInfo(name, unit=hint.unit if hint else "", description=hint.description if hint else "", kind=kind)


def property_column(values: Sequence[Any], name: str, hint: PropertyInfo | None) -> tuple[Any, PropertyInfo]:
    """A property column (float array or pandas strings) and its info; see :func:`resolve_info`."""
    raw = _objects(values)
    numeric = _numbers(raw)
    info = resolve_info(name, kind_of(int(np.count_nonzero(~np.isnan(numeric))), int(np.count_nonzero(~pd.isna(raw)))), hint)
    return (numeric if info.kind == "numeric" else pd.array(raw, dtype="string")), info
