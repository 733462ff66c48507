"""The analogy section's tables: which square to show first, and what each encoder makes of it.

The lecture's headline is ``z(BaTiO3) − z(BaZrO3) + z(SrZrO3) ≈ z(SrTiO3)``; the built-in dataset
holds that perovskite family (see :data:`crystalrep.sources.prototypes.LECTURE_SITES`), and
:func:`ordered_choices` puts its squares first when the dataset has them. Every number in
:func:`analogy_tables` comes from :mod:`crystalrep.lecture.analogies` on standardised embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from crystalrep.lecture import analogies

__all__ = ["HEADLINE", "AnalogyTables", "analogy_label", "analogy_tables", "missing_example", "ordered_choices"]

HEADLINE = ("BaTiO3", "BaZrO3", "SrZrO3", "SrTiO3")  # a − b + c ≈ d
MAX_CHOICES = 400
WALK_STEPS = 7


@cache
def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def _priority(a: str, b: str, c: str, d: str) -> int:
    """0: the headline square; 1: BaTiO3 − BaX + SrX ≈ SrTiO3; 2: answered by SrTiO3; 3: any other."""
    query, answer = _reduced(HEADLINE[0]), _reduced(HEADLINE[3])
    if (a, b, c, d) == tuple(_reduced(f) for f in HEADLINE):
        return 0
    if a == query and d == answer:
        return 1
    return 2 if d == answer else 3


def ordered_choices(quads: pd.DataFrame, formulas: Sequence[str], *,
                    limit: int = MAX_CHOICES) -> list[tuple[int, int, int, int]]:
    """A family's analogies ``(a, b, c, d)``, the lecture's headline square first, at most ``limit``.

    Args:
        quads: Rows of :func:`crystalrep.lecture.analogies.find_analogies` (columns ``a``..``d``).
        formulas: Formula of every dataset row (reduced formulas are compared, so ``TiBaO3`` counts).
        limit: Choices kept.

    Returns:
        Squares ordered by: the headline itself, then ``BaTiO3 − BaX + SrX ≈ SrTiO3``, then any
        answered by SrTiO3, then the rest, each group in the input order.
    """
    rows = [(int(a), int(b), int(c), int(d)) for a, b, c, d in quads[["a", "b", "c", "d"]].to_numpy()]
    rank = [_priority(*(_reduced(str(formulas[i])) for i in quad)) for quad in rows]
    order = sorted(range(len(rows)), key=lambda k: rank[k])  # stable: input order within a group
    return [rows[k] for k in order[:limit]]


def missing_example(formulas: Sequence[str]) -> list[str]:
    """Which crystals of the headline square the rows lack (empty when the lecture's example is there)."""
    present = {_reduced(str(f)) for f in formulas}
    return [f for f in HEADLINE if _reduced(f) not in present]


def analogy_label(formulas: Sequence[str], quad: tuple[int, int, int, int]) -> str:
    """``"BaTiO3 − BaZrO3 + SrZrO3 ≈ SrTiO3?"``."""
    a, b, c, d = (str(formulas[r]) for r in quad)
    return f"{a} − {b} + {c} ≈ {d}?"


@dataclass(frozen=True)
class AnalogyTables:
    """Section 4's tables, one row (or column) per encoder.

    Attributes:
        one: The chosen square: residual, the residual of answering a or c, rank of the answer
            (``"3 of 1894"``) and the crystal nearest to the query.
        summary: Over every square of the family: count, median rank, % answered first, % in the
            top 5, median residual, % where the arithmetic beats answering a or c.
        walk: The straight line from b to d: ``t`` and, per encoder, ``"formula (distance)"`` of the
            nearest crystal at each step.
    """

    one: pd.DataFrame
    summary: pd.DataFrame
    walk: pd.DataFrame


def analogy_tables(embeddings: Mapping[str, np.ndarray], formulas: Sequence[str], family_quads: np.ndarray,
                   quad: tuple[int, int, int, int], *, steps: int = WALK_STEPS) -> AnalogyTables:
    """Score one square and its whole family on each embedding (standardised per dimension first).

    Args:
        embeddings: Encoder name -> embedding ``[n, dim]`` (rows = dataset rows).
        formulas: Formula of every row, for the nearest-crystal columns.
        family_quads: Every square of the family, ``[q, 4]`` rows ``(a, b, c, d)``.
        quad: The square shown in detail.
        steps: Points on the b → d line.
    """
    one: list[dict[str, object]] = []
    summary: list[dict[str, object]] = []
    walk: dict[str, list[str]] = {}
    for name, X in embeddings.items():
        Z = analogies.standardize(X)
        res = analogies.analogy(Z, *quad, k=1)
        one.append({"encoder": name, "residual": res.residual, "residual of answering a or c": res.baseline,
                    "rank of the answer": f"{res.rank} of {res.n_candidates}",
                    "nearest to the query": str(formulas[res.nearest[0]])})
        stats = analogies.summarize_analogies(Z, family_quads)
        summary.append({"encoder": name, "analogies": stats["n"], "median rank": stats.get("median_rank"),
                        "answer ranked 1st": 100 * stats.get("top1", np.nan),
                        "answer in top 5": 100 * stats.get("top5", np.nan),
                        "median residual": stats.get("median_residual"),
                        "beats answering a or c": 100 * stats.get("beats_baseline", np.nan)})
        line = analogies.interpolate(Z, quad[1], quad[3], steps=steps)
        walk.setdefault("t", [f"{t:.2f}" for t in line["t"]])
        walk[name] = [f"{formulas[r]} ({dist:.2f})" for r, dist in zip(line["nearest"], line["distance"], strict=True)]
    return AnalogyTables(pd.DataFrame(one), pd.DataFrame(summary), pd.DataFrame(walk))
