"""Judgements the dashboard prints beside the numbers: can this be probed, and "pretty map, dead probe".

The badge fires when an encoder's 2-D map *looks* well separated by a categorical label (the
silhouette of the map, :func:`~crystalrep.analysis.sweeps.map_separation`, is at least
:data:`SEPARATED_SILHOUETTE`) while a linear probe of the property scores R² below
:data:`DEAD_PROBE_R2`: the lecture's warning that a clean t-SNE is no evidence of useful features.
The map is a cached t-SNE or UMAP (seed 0, default parameters) when the store holds one, else PCA,
which is cheap enough to compute on the spot; the badge says which.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.analysis.projections import KIND, cache_key, make_spec, project_cached
from crystalrep.analysis.splits import elements_of, labelled_folds
from crystalrep.analysis.sweeps import map_separation
from crystalrep.store import Store

__all__ = [
    "DEAD_PROBE_R2", "MIN_TEST_ROWS", "SEPARATED_SILHOUETTE", "SEPARATION_LABELS", "Badge",
    "badge_map_method", "holdout_elements", "map_separation_of", "pretty_map_dead_probe",
    "probe_problem", "separation_label",
]

DEAD_PROBE_R2 = 0.2
# Kaufman & Rousseeuw: a silhouette above 0.25 is where groups start to be visible at all.
SEPARATED_SILHOUETTE = 0.25
MIN_TEST_ROWS = 2  # R² of one test crystal is undefined
SEPARATION_LABELS = ("crystal_system", "prototype")
CACHED_MAPS = ("tsne", "umap")
MAP_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}


@dataclass(frozen=True)
class Badge:
    """The "pretty map, dead probe" verdict for one encoder and property.

    Attributes:
        flagged: Map separation ≥ ``separated`` and probe R² < ``dead``.
        separation: Silhouette of the 2-D map by ``label`` (NaN when undefined).
        r2: Mean probe R² over folds.
        map_method: ``"tsne"``, ``"umap"`` or ``"pca"``.
        label: Column whose classes colour the map.
        separated: Silhouette threshold for "looks well separated".
        dead: R² threshold for "dead probe".
    """

    flagged: bool
    separation: float
    r2: float
    map_method: str
    label: str
    separated: float = SEPARATED_SILHOUETTE
    dead: float = DEAD_PROBE_R2

    @property
    def caption(self) -> str:
        """``"t-SNE map silhouette by crystal system 0.41"``."""
        value = "undefined (fewer than 2 classes)" if math.isnan(self.separation) else f"{self.separation:.2f}".replace("-", "−")
        return f"{MAP_NAMES.get(self.map_method, self.map_method)} map silhouette by {self.label.replace('_', ' ')} {value}"

    @property
    def help(self) -> str:
        """How the verdict is reached, with both thresholds."""
        return (f"Shown when the {MAP_NAMES.get(self.map_method, self.map_method)} map coloured by "
                f"{self.label.replace('_', ' ')} looks well separated — silhouette ≥ {self.separated:g} "
                f"(here {self.separation:.2f}) — while a linear probe of the property scores R² < {self.dead:g} "
                f"(here {self.r2:.2f}): the classes look clean in 2-D, but the embedding does not linearly "
                "encode this property.")


def pretty_map_dead_probe(separation: float, r2: float, *, map_method: str, label: str,
                          separated: float = SEPARATED_SILHOUETTE, dead: float = DEAD_PROBE_R2) -> Badge:
    """Decide the badge from a map's separation and a probe's R² (NaN never flags)."""
    flagged = bool(np.isfinite(separation) and np.isfinite(r2) and separation >= separated and r2 < dead)
    return Badge(flagged, float(separation), float(r2), map_method, label, separated, dead)


def separation_label(table: pd.DataFrame) -> str | None:
    """The first of :data:`SEPARATION_LABELS` with at least 2 classes in ``table`` (else ``None``)."""
    for name in SEPARATION_LABELS:
        if name in table.columns and table[name].dropna().nunique() >= 2:
            return name
    return None


def badge_map_method(embedding_key: str, *, store: Store | None = None) -> str:
    """``"tsne"`` or ``"umap"`` if the store holds that map (seed 0, default parameters), else ``"pca"``."""
    store = store if store is not None else Store()
    for method in CACHED_MAPS:
        if store.verified(KIND, cache_key(embedding_key, make_spec(method, None, 0))) is not None:
            return method
    return "pca"


def map_separation_of(X: np.ndarray, embedding_key: str, labels: Any, *, method: str = "pca",
                      store: Store | None = None) -> float:
    """Silhouette by ``labels`` of the seed-0, default-parameter ``method`` map of ``X`` (via the store)."""
    coords = project_cached(X, embedding_key, method=method, seed=0, store=store).coords
    return map_separation(coords, labels)


def holdout_elements(table: pd.DataFrame, y: np.ndarray, *, min_rows: int = MIN_TEST_ROWS) -> list[tuple[str, int]]:
    """Elements that leave-one-element-out can hold out: ``(symbol, labelled crystals containing it)``.

    Kept when at least ``min_rows`` labelled crystals contain the element and at least ``min_rows``
    do not; most common first.
    """
    labelled = table["chemsys"][np.isfinite(np.asarray(y, dtype=np.float64))]
    counts = Counter(e for c in labelled for e in elements_of(c))
    n = len(labelled)
    kept = [(e, k) for e, k in counts.items() if k >= min_rows and n - k >= min_rows]
    return sorted(kept, key=lambda pair: (-pair[1], pair[0]))


def probe_problem(table: pd.DataFrame, y: np.ndarray, *, split: str, n_splits: int = 5,
                  element: str | None = None) -> str | None:
    """One sentence saying why this split cannot give probe scores, or ``None`` when it can.

    Every fold needs at least :data:`MIN_TEST_ROWS` labelled test rows (R² is undefined for one)
    and as many training rows.
    """
    n = int(np.isfinite(np.asarray(y, dtype=np.float64)).sum())
    if split != "element" and n < MIN_TEST_ROWS * n_splits:
        return (f"This dataset has {n} labelled crystal{'s' * (n != 1)}; a {n_splits}-fold probe needs at least "
                f"{MIN_TEST_ROWS * n_splits} ({MIN_TEST_ROWS} test crystals per fold), so it cannot be probed.")
    try:
        fold_list = labelled_folds(table, y, split=split, n_splits=n_splits, element=element)
    except ValueError as exc:
        text = str(exc)
        return text[0].upper() + text[1:]
    smallest_test = min(len(te) for _, te in fold_list)
    smallest_train = min(len(tr) for tr, _ in fold_list)
    if smallest_test < MIN_TEST_ROWS or smallest_train < MIN_TEST_ROWS:
        return (f"This split leaves a fold with {smallest_train} training and {smallest_test} test crystals; "
                f"probe scores need at least {MIN_TEST_ROWS} of each.")
    return None
