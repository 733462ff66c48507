"""Crystal search and the display tables of one crystal and of its neighbours (space-group symbols, labels)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crystalrep.plots.data import COLUMN_NAMES, label_name

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset

LABELS = COLUMN_NAMES  # kept for the pages that import it: one table of column names


@functools.lru_cache(maxsize=512)
def spacegroup_label(number: int) -> str:
    """``"Fm-3m (225)"`` from an international space-group number; just the number if unknown."""
    from pymatgen.symmetry.groups import SpaceGroup

    try:
        return f"{SpaceGroup.from_int_number(int(number)).symbol} ({int(number)})"
    except (ValueError, KeyError):
        return str(number)


def crystal_labels(table: pd.DataFrame) -> list[str]:
    """One ``"id — formula — space group"`` label per dataset row, for a searchable picker."""
    groups = [spacegroup_label(n) for n in table["spacegroup"]]
    return [f"{i} — {f} — {g}" for i, f, g in zip(table["id"], table["formula"], groups, strict=True)]


def neighbour_display(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~crystalrep.analysis.retrieval.neighbour_table` for display: symbols, no row positions."""
    out = table.drop(columns=["row"], errors="ignore").copy()
    out["spacegroup"] = [spacegroup_label(n) for n in out["spacegroup"]]
    return out.rename(columns={"spacegroup": "space group"})


def _element_rows(dataset: Dataset, symbol: str) -> np.ndarray:
    from pymatgen.core.periodic_table import Element

    owner = np.repeat(np.arange(len(dataset)), np.diff(dataset.offsets))
    mask = np.zeros(len(dataset), dtype=bool)
    mask[owner[dataset.numbers == Element(symbol).Z]] = True
    return mask


def search_rows(dataset: Dataset, query: str) -> np.ndarray:
    """Rows matching every word of ``query``: an element symbol (``Ba``, ``o``), a formula or an id.

    A word of one or two letters that is an element symbol (any case) matches the crystals that
    contain it; any other word matches ids containing it (case-insensitive) and formulas
    containing it or equal to it once reduced (``Ti2O4`` finds ``TiO2``). An empty query matches nothing.
    """
    from pymatgen.core import Composition
    from pymatgen.core.periodic_table import Element

    words = [w for w in re.split(r"[\s,;]+", query.strip()) if w]
    if not words:
        return np.zeros(0, dtype=np.int64)
    table = dataset.table
    ids, formulas = table["id"].astype(str).str.lower(), table["formula"].astype(str)
    mask = np.ones(len(dataset), dtype=bool)
    for word in words:
        symbol = word[:1].upper() + word[1:].lower()
        if word.isalpha() and len(word) <= 2 and Element.is_valid_symbol(symbol):
            mask &= _element_rows(dataset, symbol)
            continue
        hit = (ids.str.contains(word.lower(), regex=False).to_numpy()
               | formulas.str.contains(word, regex=False).to_numpy())
        try:
            hit |= (formulas == Composition(word).reduced_formula).to_numpy()
        except ValueError:  # not a formula: ids and substrings only
            pass
        mask &= hit
    return np.flatnonzero(mask)


def crystal_properties(dataset: Dataset, row: int) -> pd.DataFrame:
    """One crystal as a two-column table (``property``, ``value``): identity, symmetry, then every property."""
    table = dataset.table.iloc[row]
    rows = [("id", str(table["id"])), ("formula", str(table["formula"])),
            ("space group", spacegroup_label(int(table["spacegroup"]))),
            ("crystal system", str(table["crystal_system"])), ("sites per cell", str(int(table["nsites"])))]
    for name, info in dataset.properties.items():
        value = table[name]
        if pd.isna(value):
            text = "no value"
        elif info.kind == "numeric":
            text = f"{float(value):.4g}"
        else:
            text = str(value)
        rows.append((label_name(name, dataset), text))
    return pd.DataFrame(rows, columns=["property", "value"])
