"""Analogy squares a dataset holds: four crystals of one structure type differing on two sites.

:func:`find_analogies` groups crystals by structure type and site positions
(:func:`site_decorations`) and returns every square ``a = (x', y)``, ``b = (x', y')``,
``c = (x, y')``, ``d = (x, y)`` (e.g. CaTiO3 − CaMoO3 + SrMoO3 ≈ SrTiO3), four answers per square;
:mod:`crystalrep.lecture.analogies` scores them on an embedding.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crystalrep.store import content_key

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset

__all__ = ["find_analogies", "rows_with_formula", "site_decorations"]


def site_decorations(dataset: Dataset, *, column: str = "prototype", decimals: int = 3) -> pd.DataFrame:
    """Which element sits on which site of each crystal, grouped by structure type.

    Sites holding the same element form a class (in order of first appearance); a crystal's
    ``group`` is its ``column`` label (space group if absent) plus the fractional positions of each
    class, so two crystals share a group only when the same sites carry the classes. Within a
    group, ``elements`` (one symbol per class) is the decoration that analogies vary.
    """
    from pymatgen.core.periodic_table import Element

    table = dataset.table
    labels = table[column].astype(str) if column in table.columns else table["spacegroup"].astype(str)
    rows = []
    for i in range(len(dataset)):
        _, numbers, frac = dataset.arrays(i)
        classes = list(dict.fromkeys(int(z) for z in numbers))
        wrapped = np.round(np.mod(frac, 1.0), decimals) % 1.0
        positions = tuple(tuple(sorted(map(tuple, wrapped[numbers == z].tolist()))) for z in classes)
        key = content_key({"label": labels.iloc[i], "spacegroup": int(table["spacegroup"].iloc[i]), "sites": positions})
        rows.append((i, labels.iloc[i], key, tuple(Element.from_Z(z).symbol for z in classes)))
    return pd.DataFrame(rows, columns=["row", "family", "group", "elements"])


def _squares(rows: dict[tuple[str, ...], int], n_classes: int) -> list[tuple[int, int, int, int]]:
    """Every ``(a, b, c, d)`` of one group: decorations that differ on exactly two classes."""
    quads = []
    for j, k in itertools.combinations(range(n_classes), 2):
        buckets: dict[tuple[tuple[str, ...], str], set[str]] = {}  # (rest, value on j) -> values on k
        for elems in rows:
            rest = tuple(e for i, e in enumerate(elems) if i not in (j, k))
            buckets.setdefault((rest, elems[j]), set()).add(elems[k])

        def at(rest: tuple[str, ...], vj: str, vk: str, j: int = j, k: int = k) -> int:
            full = list(rest)
            for pos, val in sorted(((j, vj), (k, vk))):
                full.insert(pos, val)
            return rows[tuple(full)]

        by_rest: dict[tuple[str, ...], list[str]] = {}
        for rest, vj in buckets:
            by_rest.setdefault(rest, []).append(vj)
        for rest, vjs in by_rest.items():
            for p, q in itertools.combinations(sorted(vjs), 2):
                for r, s in itertools.combinations(sorted(buckets[rest, p] & buckets[rest, q]), 2):
                    corners = {(x, y): at(rest, x, y) for x in (p, q) for y in (r, s)}
                    for (x, y), d in corners.items():  # each corner once as the answer
                        xo, yo = (q if x == p else p), (s if y == r else r)
                        quads.append((corners[xo, y], corners[xo, yo], corners[x, yo], d))
    return quads


def find_analogies(dataset: Dataset, *, family: str | None = None, column: str = "prototype") -> pd.DataFrame:
    """Every analogy square the dataset holds (see :mod:`crystalrep.lecture.squares`), four answers per square.

    Args:
        dataset: The crystals.
        family: Keep only this ``column`` value (e.g. ``"perovskite"``); all families when ``None``.
        column: Structure-type column (space group when the dataset has none).

    Returns:
        Columns ``family``, ``a``, ``b``, ``c``, ``d`` (rows: ``z_a − z_b + z_c ≈ z_d``), sorted.
    """
    deco = site_decorations(dataset, column=column)
    if family is not None:
        deco = deco[deco["family"] == family]
    quads = []
    for _, group in deco.groupby("group", sort=True):
        rows: dict[tuple[str, ...], int] = {}
        for elems, row in zip(group["elements"], group["row"], strict=True):
            rows.setdefault(elems, int(row))  # two crystals with one decoration: keep the first
        label = str(group["family"].iloc[0])
        quads += [(label, *q) for q in _squares(rows, len(group["elements"].iloc[0]))]
    out = pd.DataFrame(quads, columns=["family", "a", "b", "c", "d"])
    return out.sort_values(["family", "a", "b", "c", "d"], ignore_index=True)


def rows_with_formula(dataset: Dataset, formula: str, *, family: str | None = None,
                      column: str = "prototype") -> list[int]:
    """Rows whose reduced formula equals ``formula`` (``"BaTiO3"`` = ``"TiBaO3"``), optionally in one family."""
    from pymatgen.core import Composition

    target = Composition(formula).reduced_formula
    table = dataset.table
    hit = table["formula"].astype(str).map(lambda f: Composition(f).reduced_formula == target)
    if family is not None and column in table.columns:
        hit &= table[column].astype(str) == family
    return [int(i) for i in np.flatnonzero(hit.to_numpy())]
