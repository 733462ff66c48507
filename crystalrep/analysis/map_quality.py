"""The numbers printed under one 2-D map: how faithful it is, and how separated it *looks*.

Trustworthiness is computed on the same fixed random subsample of rows that
:func:`crystalrep.analysis.sweeps.sweep` uses (seed 0, 2,000 rows), so a panel's number and its
sweep cell agree; separation is :func:`~crystalrep.analysis.sweeps.map_separation` of the map by
a categorical label (the "pretty map" half of "pretty map, dead probe").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from crystalrep.analysis.sweeps import K, map_separation, subsample, trustworthiness

__all__ = ["MapScores", "score_map"]


@dataclass(frozen=True)
class MapScores:
    """Faithfulness and apparent separation of one map.

    Attributes:
        trustworthiness: sklearn's trustworthiness (1 = no false neighbours in 2-D).
        k: Neighbours used for it.
        sample_size: Rows it was computed on (all rows up to ``sample_size``).
        n: Rows in the map.
        separation: Silhouette of the map by ``label`` (NaN without a categorical label, or
            with fewer than 2 classes).
        label: Name of the label the separation refers to (``None`` when not computed).
    """

    trustworthiness: float
    k: int
    sample_size: int
    n: int
    separation: float = float("nan")
    label: str | None = None


def score_map(X: np.ndarray, coords: np.ndarray, *, labels: Any = None, label: str | None = None,
              metric: str = "euclidean", k: int = K, sample_size: int = 2000, seed: int = 0) -> MapScores:
    """Score a 2-D map ``coords`` of the embedding ``X``.

    Args:
        X: Embedding ``[n, d]``.
        coords: Its map ``[n, 2]``.
        labels: Categorical label per row for the separation (missing values are dropped);
            ``None`` skips it.
        label: Name of that label, recorded in the result.
        metric: Distance in ``X`` (the projection's own metric).
        k: Neighbours for trustworthiness (lowered for tiny maps, as sklearn requires k < n/2).
        sample_size: Rows scored at most (a fixed random subsample above that).
        seed: Seed of the subsample.

    Raises:
        ValueError: ``X``, ``coords`` and ``labels`` disagree in length, or fewer than 3 rows.
    """
    X, coords = np.asarray(X), np.asarray(coords)
    if len(X) != len(coords) or len(X) < 3:
        raise ValueError(f"a map needs as many rows as its embedding (at least 3); got {len(X)} and {len(coords)}.")
    rows = subsample(len(X), sample_size, seed)
    k = max(1, min(k, math.ceil(len(rows) / 2) - 1))
    trust = trustworthiness(X[rows], coords[rows], k=k, metric=metric)
    separation = float("nan") if labels is None else map_separation(coords, labels, seed=seed)
    return MapScores(trust, k, len(rows), len(X), separation, None if labels is None else label)
