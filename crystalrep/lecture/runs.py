"""The lecture's heavier numbers, cached in the store: invariance tables, probe grids, map scores.

Invariance tables and map scores are small JSON artifacts under kind ``"lecture"``
(:meth:`~crystalrep.store.Store.memo_json`), keyed by what made them (dataset and encoder
fingerprints or embedding keys, seed). A probe-grid cell is the same probe the Probes page runs,
cached once under kind ``"probes"`` (:func:`crystalrep.analysis.probes.probe_cached`). A
lecturer's second run of a demo is a file read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.analysis import probes
from crystalrep.store import Store, content_key

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = ["GEOMETRY", "INVARIANCE_N", "KIND", "MAP_METHOD", "PROBES_KIND", "SEED", "invariance_cached",
           "invariance_key", "is_stored", "map_key", "map_report", "pick_contrast", "probe_grid", "probe_key",
           "tsne_map"]

KIND = "lecture"
PROBES_KIND = probes.KIND  # where probe_key's cells live
VERSION = 1
# What every run of the lecture uses, so the page and `crystalrep lecture prepare` hit the same store entries.
GEOMETRY = "cell size only"  # display name of the geometry-only control embedding
INVARIANCE_N = 20
MAP_METHOD = "tsne"
SEED = 0


def _cached(store: Store | None, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    store = store if store is not None else Store()
    result, hit = store.memo_json(KIND, key, compute, accept=lambda value: isinstance(value, dict))
    return {**result, "from_cache": hit}


def invariance_cached(dataset: Dataset, encoder: Encoder, *, n: int = 20, seed: int = 0,
                      store: Store | None = None, device: str = "auto") -> dict[str, Any]:
    """:func:`crystalrep.analysis.diagnostics.invariance_for_dataset`, read from the store when it holds it.

    The key is ``(dataset fingerprint, encoder fingerprint, n, seed)``; the result gains ``from_cache``.
    """
    from crystalrep.analysis.diagnostics import invariance_for_dataset

    key = invariance_key(dataset, encoder, n=n, seed=seed)
    return _cached(store, key, lambda: invariance_for_dataset(encoder, dataset, n=n, seed=seed, device=device))


def invariance_key(dataset: Dataset, encoder: Encoder, *, n: int = INVARIANCE_N, seed: int = SEED) -> str:
    """Store key of :func:`invariance_cached`'s result: ``(dataset, encoder fingerprint, n, seed)``."""
    return content_key({"what": "invariance", "v": VERSION, "dataset": dataset.fingerprint,
                        "encoder": encoder.fingerprint, "n": n, "seed": seed})


def is_stored(key: str, *, store: Store | None = None, kind: str = KIND) -> bool:
    """Whether the store holds the result ``key`` (nothing is computed); probe cells are of kind :data:`PROBES_KIND`."""
    store = store if store is not None else Store()
    return store.verified(kind, key) is not None


def tsne_map(X: np.ndarray, embedding_key: str, *, store: Store | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The lecture's map of ``X``: openTSNE defaults, seed 0 (shared with the Projections page's cache), and its scores.

    Returns:
        ``(coords [n, 2], map_report(...))``; both read from the store when it holds them.
    """
    from crystalrep.analysis.projections import cache_key, project_cached

    proj = project_cached(X, embedding_key, method=MAP_METHOD, seed=SEED, store=store)
    return proj.coords, map_report(X, proj.coords, key=cache_key(embedding_key, proj.spec), store=store)


def probe_grid(dataset: Dataset, embeddings: Mapping[str, tuple[np.ndarray, str]], *,
               properties: list[str] | None = None, split: str = "grouped", seed: int = 0, n_splits: int = 5,
               store: Store | None = None) -> pd.DataFrame:
    """Linear-probe R² of every embedding on every numeric property, on the same folds per property.

    Args:
        dataset: The crystals and their property columns.
        embeddings: Name -> ``(X, key)``, where ``key`` identifies ``X`` (e.g. its store key).
        properties: Numeric properties to probe (all numeric ones by default).
        split: Outer split (see :func:`crystalrep.analysis.splits.folds`).
        seed: Seed of the folds.
        n_splits: Outer folds.
        store: Artifact store (default ``$CRYSTALREP_HOME``).

    Returns:
        Long table: ``property``, ``embedding``, ``r2_mean``, ``r2_std``, ``mae_mean``, ``n``.

    Raises:
        ValueError: Too few rows or chemical systems for the split for every property (a property
            that alone lacks them gets NaN scores).
    """
    rows, errors = [], []
    for prop in properties if properties is not None else dataset.property_names("numeric"):
        y = pd.to_numeric(dataset.table[prop], errors="coerce").to_numpy(dtype=np.float64)
        folds = _Folds(dataset.table, y, split=split, seed=seed, n_splits=n_splits)  # built only on a cache miss
        for name, (X, emb_key) in embeddings.items():
            key = probe_key(emb_key, prop, y, split=split, seed=seed, n_splits=n_splits)
            about = {"encoder": name, "embedding_key": emb_key, "dataset": getattr(dataset, "name", None),
                     "property": prop, "split": split, "seed": seed, "n_labels": None, "element": None}
            try:
                result = probes.probe_cached(key, partial(folds.probe, X), about=about, store=store)[0].to_dict()
            except ValueError as exc:  # too few labelled rows or systems for this property: NaN, not a failure
                errors.append(exc)
                result = {"r2_mean": float("nan"), "r2_std": float("nan"), "mae_mean": float("nan"), "n": 0}
            rows.append({"property": prop, "embedding": name, "r2_mean": result["r2_mean"],
                         "r2_std": result["r2_std"], "mae_mean": result["mae_mean"], "n": result["n"]})
    if errors and len(errors) == len(rows):
        raise errors[0]
    return pd.DataFrame(rows, columns=["property", "embedding", "r2_mean", "r2_std", "mae_mean", "n"])


def probe_key(embedding_key: str, prop: str, y: np.ndarray, *, split: str = "grouped", seed: int = SEED,
              n_splits: int = 5) -> str:
    """Store key (kind :data:`PROBES_KIND`) of one cell of :func:`probe_grid`: the Probes page's key of the same probe."""
    return probes.probe_key(embedding_key, prop, y, split=split, seed=seed, n_splits=n_splits)


class _Folds:
    """The outer folds of one target, made on first use."""

    def __init__(self, table: pd.DataFrame, y: np.ndarray, **kwargs: Any) -> None:
        self.table, self.y, self.kwargs = table, y, kwargs

    @cached_property
    def folds(self) -> list[Any]:
        from crystalrep.analysis.splits import labelled_folds

        return labelled_folds(self.table, self.y, **self.kwargs)

    def probe(self, X: np.ndarray) -> probes.ProbeResult:
        return probes.probe(X, self.y, self.folds)


def pick_contrast(grid: pd.DataFrame, *, control: str, near_zero: float = 0.1,
                  property: str | None = None) -> tuple[str, str, bool]:
    """The (property, encoder) that best shows a control embedding knowing nothing.

    Among properties where the control's R² is below ``near_zero``, take the one where another
    embedding's R² rises furthest above the control's (negative R² counted as 0); if no property
    is that low, the largest gap overall. With ``property`` given, only the encoder is chosen.

    Returns:
        ``(property, encoder, control_near_zero)``.

    Raises:
        ValueError: ``grid`` has no control rows or no other embedding.
    """
    wide = grid.pivot(index="property", columns="embedding", values="r2_mean")
    others = [c for c in wide.columns if c != control]
    if control not in wide.columns or not others:
        raise ValueError(f"the probe grid needs the control {control!r} and at least one other embedding.")
    if property is not None:
        wide = wide.loc[[property]]
    gap = wide[others].sub(wide[control].clip(lower=0.0), axis=0).dropna(how="all")
    if gap.empty:
        raise ValueError("no probe has a finite R²; the dataset is too small to score.")
    low = (wide[control] < near_zero).reindex(gap.index)
    pool = gap[low] if low.any() else gap
    prop, encoder = pool.stack().idxmax()  # stack() drops NaN cells
    return str(prop), str(encoder), bool(low.any())


def map_report(X: np.ndarray, coords: np.ndarray, *, key: str, store: Store | None = None,
               min_cluster_size: int = 15) -> dict[str, Any]:
    """How faithful a map is and how clean it *looks*, cached under ``key`` (which must identify the map).

    Returns:
        ``trustworthiness`` (of the map to ``X``), ``islands`` (HDBSCAN clusters of the 2-D map),
        ``noise`` (their noise fraction) and ``separation``: silhouette of the map by its own islands
        (high = compact, well-separated blobs; NaN with fewer than 2 islands).
    """
    from crystalrep.analysis.clusters import hdbscan_clusters
    from crystalrep.analysis.map_quality import score_map

    def compute() -> dict[str, Any]:
        islands = hdbscan_clusters(coords, min_cluster_size=max(2, min(min_cluster_size, len(coords) // 4)))
        labels = pd.Series(islands.labels).where(islands.labels >= 0)
        scores = score_map(X, coords, labels=labels, label="islands")
        separation = scores.separation
        return {"trustworthiness": scores.trustworthiness, "islands": islands.n_clusters,
                "noise": islands.noise_fraction, "separation": None if math.isnan(separation) else separation}

    return _cached(store, map_key(key, min_cluster_size=min_cluster_size), compute)


def map_key(key: str, *, min_cluster_size: int = 15) -> str:
    """Store key of :func:`map_report`'s result for the map stored under ``key``."""
    return content_key({"what": "map", "v": VERSION, "map": key, "mcs": min_cluster_size})
