"""The lecture's latent arithmetic: analogies and interpolation on an embedding.

* :func:`analogy` asks whether ``z_a − z_b + z_c ≈ z_d`` (word2vec's "king − man + woman"), and
  :func:`analogy_scores` / :func:`summarize_analogies` score many at once — e.g. every square
  :func:`find_analogies` finds in a dataset (:mod:`crystalrep.lecture.squares`).
* :func:`interpolate` walks the straight line between two embeddings and names the nearest
  crystal at each step.

Distances are Euclidean on the rows as given; :func:`standardize` first when the embedding's
dimensions have different units (Magpie mixes kelvin, ångström and counts). The geometry-only
control embedding (:mod:`crystalrep.lecture.geometry`) and the square finder are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.lecture.geometry import (
    GEOMETRY_FEATURES,
    GEOMETRY_VERSION,
    geometry_key,
    geometry_only_embedding,
    standardize,
)
from crystalrep.lecture.squares import find_analogies, rows_with_formula, site_decorations

__all__ = ["GEOMETRY_FEATURES", "GEOMETRY_VERSION", "Analogy", "analogy", "analogy_scores", "find_analogies",
           "geometry_key", "geometry_only_embedding", "interpolate", "rows_with_formula", "site_decorations",
           "standardize", "summarize_analogies"]

_CHUNK = 256  # analogy targets scored per block (memory: chunk × n distances)


@dataclass(frozen=True)
class Analogy:
    """How well ``z_a − z_b + z_c`` lands on ``z_d``.

    Attributes:
        a, b, c: Rows of the query ``z_a − z_b + z_c``.
        d: Row of the expected answer (``None`` when not given).
        residual: ``‖z_a − z_b + z_c − z_d‖ / ‖z_d‖`` (0 = exact; NaN without ``d``).
        baseline: ``min(‖z_a − z_d‖, ‖z_c − z_d‖) / ‖z_d‖``: the residual of simply answering the
            nearer of ``a`` and ``c``; the arithmetic helps only when ``residual < baseline``.
        rank: Position of ``d`` among the candidates sorted by distance to the query (1 = nearest).
        n_candidates: Rows ranked (all rows, minus ``a``, ``b``, ``c`` when they are excluded).
        nearest: The ``k`` candidate rows nearest to the query, nearest first.
        distances: Their distances to the query.
    """

    a: int
    b: int
    c: int
    d: int | None
    residual: float
    baseline: float
    rank: int | None
    n_candidates: int
    nearest: tuple[int, ...]
    distances: tuple[float, ...]


def _row(ref: int | str, n: int, ids: Sequence[str] | None) -> int:
    if isinstance(ref, str):
        if ids is None:
            raise ValueError(f"crystal {ref!r} given by id, but no ids were passed.")
        try:
            return list(ids).index(ref)
        except ValueError:
            raise ValueError(f"no crystal with id {ref!r}.") from None
    if not -n <= int(ref) < n:
        raise ValueError(f"row {ref} is out of range for {n} crystals.")
    return int(ref) % n


def _distances_to(X: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[len(targets), len(X)]``."""
    sq = (targets**2).sum(1)[:, None] - 2.0 * targets @ X.T + (X**2).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def analogy_scores(X: np.ndarray, quads: np.ndarray, *, exclude_inputs: bool = True) -> pd.DataFrame:
    """Residual, baseline and rank of many analogies ``(a, b, c, d)`` at once (see :class:`Analogy`).

    Args:
        X: Embedding ``[n, dim]``.
        quads: Integer rows ``[q, 4]`` of ``(a, b, c, d)``.
        exclude_inputs: Leave ``a``, ``b`` and ``c`` out of the ranking (word2vec's convention:
            otherwise the query's own inputs are often its nearest rows).

    Returns:
        One row per analogy: ``residual``, ``baseline``, ``rank``, ``nearest`` (row nearest to the query).
    """
    X = np.asarray(X, dtype=np.float64)
    quads = np.asarray(quads, dtype=np.int64).reshape(-1, 4)
    if quads.size and (quads.min() < 0 or quads.max() >= len(X)):
        raise ValueError(f"analogy rows must lie in 0..{len(X) - 1}.")
    out = []
    for start in range(0, len(quads), _CHUNK):
        q = quads[start:start + _CHUNK]
        za, zb, zc, zd = (X[q[:, i]] for i in range(4))
        target = za - zb + zc
        norm = np.maximum(np.linalg.norm(zd, axis=1), np.finfo(np.float64).tiny)
        dist = _distances_to(X, target)
        if exclude_inputs:
            np.put_along_axis(dist, q[:, :3], np.inf, axis=1)
        own = dist[np.arange(len(q)), q[:, 3]]
        out.append(pd.DataFrame({
            "residual": np.linalg.norm(target - zd, axis=1) / norm,
            "baseline": np.minimum(np.linalg.norm(za - zd, axis=1), np.linalg.norm(zc - zd, axis=1)) / norm,
            "rank": (dist < own[:, None]).sum(1) + 1,
            "nearest": dist.argmin(1),
        }))
    if not out:
        return pd.DataFrame(columns=["residual", "baseline", "rank", "nearest"])
    return pd.concat(out, ignore_index=True)


def analogy(X: np.ndarray, a: int | str, b: int | str, c: int | str, d: int | str | None = None, *,
            ids: Sequence[str] | None = None, k: int = 5, exclude_inputs: bool = True) -> Analogy:
    """Does ``z_a − z_b + z_c`` land on ``z_d``?

    Args:
        X: Embedding ``[n, dim]``.
        a: First term (a row, or an id when ``ids`` is given).
        b: Subtracted term.
        c: Added term.
        d: The expected answer (optional).
        ids: Row ids, to name crystals by id.
        k: Nearest candidates to return.
        exclude_inputs: Leave ``a``, ``b``, ``c`` out of the ranking and of ``nearest``.

    Raises:
        ValueError: A row out of range or an unknown id.
    """
    X = np.asarray(X, dtype=np.float64)
    ra, rb, rc = (_row(r, len(X), ids) for r in (a, b, c))
    rd = None if d is None else _row(d, len(X), ids)
    dist = _distances_to(X, (X[ra] - X[rb] + X[rc])[None, :])[0]
    if exclude_inputs:
        dist[[ra, rb, rc]] = np.inf
    order = [int(i) for i in np.argsort(dist, kind="stable") if np.isfinite(dist[i])][:k]
    n_candidates = int(np.isfinite(dist).sum())
    if rd is None:
        return Analogy(ra, rb, rc, None, float("nan"), float("nan"), None, n_candidates, tuple(order),
                       tuple(float(dist[i]) for i in order))
    score = analogy_scores(X, np.array([[ra, rb, rc, rd]]), exclude_inputs=exclude_inputs).iloc[0]
    return Analogy(ra, rb, rc, rd, float(score["residual"]), float(score["baseline"]), int(score["rank"]),
                   n_candidates, tuple(order), tuple(float(dist[i]) for i in order))


def summarize_analogies(X: np.ndarray, quads: np.ndarray) -> dict[str, Any]:
    """Median rank, hit rates and residuals of many analogies on one embedding (inputs excluded)."""
    scores = analogy_scores(X, quads)
    if scores.empty:
        return {"n": 0}
    return {
        "n": len(scores),
        "candidates": len(X) - 3,
        "median_rank": float(scores["rank"].median()),
        "top1": float((scores["rank"] == 1).mean()),
        "top5": float((scores["rank"] <= 5).mean()),
        "median_residual": float(scores["residual"].median()),
        "median_baseline": float(scores["baseline"].median()),
        "beats_baseline": float((scores["residual"] < scores["baseline"]).mean()),
    }


def interpolate(X: np.ndarray, a: int | str, b: int | str, *, steps: int = 7,
                ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Nearest crystals along the straight line ``z(t) = (1 − t) z_a + t z_b``.

    Returns:
        One row per step: ``t``, ``nearest`` (row) and ``distance``, and ``nearest_other`` /
        ``distance_other``: the nearest row that is neither endpoint.
    """
    X = np.asarray(X, dtype=np.float64)
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}.")
    ra, rb = _row(a, len(X), ids), _row(b, len(X), ids)
    t = np.linspace(0.0, 1.0, steps)
    dist = _distances_to(X, (1 - t)[:, None] * X[ra] + t[:, None] * X[rb])
    nearest = dist.argmin(1)
    other = dist.copy()
    other[:, [ra, rb]] = np.inf
    has_other = np.isfinite(other).any(1)
    nearest_other = np.where(has_other, other.argmin(1), -1)
    return pd.DataFrame({
        "t": t, "nearest": nearest, "distance": dist[np.arange(steps), nearest],
        "nearest_other": nearest_other,
        "distance_other": np.where(has_other, other[np.arange(steps), np.maximum(nearest_other, 0)], np.nan),
    })
