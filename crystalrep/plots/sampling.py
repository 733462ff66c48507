"""Which crystals a map draws as points when a browser cannot take them all.

A figure ships at most a budget of points (:data:`POINT_BUDGET`, shared by its panels); above it
each panel draws a seeded sample and a density image of every row beneath
(:mod:`crystalrep.plots.density`). The sample is stratified by the colour's legend entries, so a
rare category keeps enough points to be seen and hovered, and it always contains the rows a page
highlights (a clicked crystal, its neighbours, a selection, search hits), so nothing the user
asked about is left out. Highlight layers themselves are capped (:data:`MAX_RINGS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

POINT_BUDGET = 50_000  # points of one figure, all panels and highlight rings together (pages offer up to 100k)
BUDGETS = (10_000, 25_000, 50_000, 100_000)  # what a page offers
MAX_RINGS = 2_000  # highlighted rows drawn per layer (the rest stay in the sample and the density)
MIN_PER_STRATUM = 200  # a stratum keeps at least this many points (or all of it)


@dataclass(frozen=True)
class Drawn:
    """The rows one panel draws as points.

    Attributes:
        rows: Sorted dataset rows drawn as points.
        total: Rows in the dataset (all of them are in the density image when sampled).
    """

    rows: np.ndarray
    total: int

    @property
    def sampled(self) -> bool:
        """Whether some rows are not drawn as points."""
        return self.rows.size < self.total

    def label(self) -> str:
        """``"40,000 of 200,000 points drawn"`` (``"all 2,000 points drawn"`` when nothing is left out)."""
        if not self.sampled:
            return f"all {self.total:,} points drawn"
        return f"{self.rows.size:,} of {self.total:,} points drawn"


def per_panel(budget: int, panels: int, rings: int) -> int:
    """Points each panel may draw: its share of ``budget`` minus its highlight rings (at least 1)."""
    if budget < 1 or panels < 1:
        raise ValueError(f"budget and panels must be positive, got {budget} and {panels}.")
    return max(1, budget // panels - rings)


def sample_rows(n: int, size: int, *, strata: np.ndarray | None = None, keep: Sequence[int] | np.ndarray = (),
                seed: int | None = 0) -> np.ndarray:
    """At most ``size`` rows of ``n`` (all rows if ``n <= size``): every ``keep`` row, then a stratified sample.

    Each stratum (equal values of ``strata``) first gets ``min(its size, MIN_PER_STRATUM)`` rows
    (less when the budget cannot give every stratum that many), and the rest of the budget is shared in
    proportion to the rows each stratum has left. Within a stratum rows are drawn uniformly.

    Args:
        n: Rows in the dataset.
        size: Rows to return (``keep`` rows count towards it; more ``keep`` rows than ``size`` are all kept).
        strata: One label per row (``None``: one stratum).
        keep: Rows that are always included.
        seed: Seed of the draw (``None``: not reproducible).

    Returns:
        Sorted, unique row indices (``int64``).

    Raises:
        ValueError: A negative size, strata of the wrong length, or a ``keep`` row outside ``[0, n)``.
    """
    if size < 0 or n < 0:
        raise ValueError(f"size and n must be non-negative, got {size} and {n}.")
    keep_rows = np.unique(np.asarray(keep, dtype=np.int64))
    if keep_rows.size and (keep_rows[0] < 0 or keep_rows[-1] >= n):
        raise ValueError(f"keep rows must lie in [0, {n}).")
    if n <= size:
        return np.arange(n, dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64) if strata is None else _codes(strata, n)
    free = np.ones(n, dtype=bool)
    free[keep_rows] = False
    budget = max(0, size - keep_rows.size)
    pools = [np.flatnonzero(free & (labels == s)) for s in range(int(labels.max()) + 1)] if n else []
    quotas = _quotas(np.array([p.size for p in pools], dtype=np.int64), budget)
    rng = np.random.default_rng(seed) if seed is not None else np.random.default_rng()
    parts = [keep_rows] + [rng.choice(pool, size=q, replace=False) for pool, q in zip(pools, quotas, strict=True) if q]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _codes(strata: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(strata)
    if values.shape != (n,):
        raise ValueError(f"strata must have one label per row ({n}), got shape {values.shape}.")
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64)


def _quotas(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Rows drawn from each stratum: a floor for every stratum, the rest in proportion (largest remainders)."""
    if sizes.sum() <= budget:
        return sizes.copy()
    floor = min(MIN_PER_STRATUM, budget // max(1, int((sizes > 0).sum())))
    base = np.minimum(sizes, floor)
    left, room = budget - int(base.sum()), sizes - base
    share = left * room / max(1, int(room.sum()))
    extra = np.floor(share).astype(np.int64)
    short = left - int(extra.sum())
    if short > 0:  # hand the rounding leftovers to the largest remainders
        order = np.argsort(-(share - extra), kind="stable")
        extra[order[:short]] += 1
    return np.minimum(base + extra, sizes)
