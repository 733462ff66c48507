"""The lecture's demonstrations: a geometry-only embedding, latent analogies and interpolation.

* :func:`geometry_only_embedding` knows only how big the cell is and how many atoms it holds —
  a map of it can look clean while a probe on it predicts chemistry at R² ≈ 0.
* :func:`analogy` asks whether ``z_a − z_b + z_c ≈ z_d`` (word2vec's "king − man + woman"), and
  :func:`find_analogies` finds every such square that a dataset holds: four crystals on one
  structure type whose decorations differ on two sites, ``a = (x', y)``, ``b = (x', y')``,
  ``c = (x, y')``, ``d = (x, y)`` (e.g. CaTiO3 − CaMoO3 + SrMoO3 ≈ SrTiO3).
* :func:`interpolate` walks the straight line between two embeddings and names the nearest
  crystal at each step.

Distances are Euclidean on the rows as given; :func:`standardize` first when the embedding's
dimensions have different units (Magpie mixes kelvin, ångström and counts).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.store import content_key

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset

__all__ = ["GEOMETRY_FEATURES", "Analogy", "analogy", "analogy_scores", "find_analogies", "geometry_key",
           "geometry_only_embedding", "interpolate", "rows_with_formula", "site_decorations", "standardize",
           "summarize_analogies"]

GEOMETRY_FEATURES = ("log volume per atom", "log atoms per cell")
GEOMETRY_VERSION = 1
_CHUNK = 256  # analogy targets scored per block (memory: chunk × n distances)


def standardize(X: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0 and standard deviation 1 (constant columns become 0), float64."""
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def geometry_only_embedding(dataset: Dataset) -> np.ndarray:
    """Each crystal as standardised ``[log volume per atom, log atoms per cell]`` (float32 ``[n, 2]``).

    The cell's size and atom count, nothing about which elements sit where: the control embedding
    of "pretty t-SNE, dead downstream".
    """
    volume = np.abs(np.linalg.det(np.asarray(dataset.lattices, dtype=np.float64)))
    nsites = np.diff(np.asarray(dataset.offsets)).astype(np.float64)
    raw = np.column_stack([np.log(volume / nsites), np.log(nsites)])
    return standardize(raw).astype(np.float32)


def geometry_key(dataset: Dataset) -> str:
    """Store key of :func:`geometry_only_embedding` of this dataset (for cached maps and probes)."""
    return "geometry-" + content_key({"dataset": dataset.fingerprint, "v": GEOMETRY_VERSION})


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
    """Every analogy square the dataset holds (see the module docstring), four answers per square.

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
