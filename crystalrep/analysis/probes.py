"""Probe a property with several encoders on the same folds, each result cached in the store.

``compare`` and ``learning_curve`` run every encoder on the same outer folds; each (embedding,
target, folds) result is one artifact of kind ``"probes"`` (:func:`probe_cached`), shared with the
lecture's probe grid, so the dashboard and the lecture read one cache. The fit itself is
:func:`crystalrep.analysis.linear_probe.probe` (re-exported here).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.analysis.linear_probe import DEFAULT_ALPHAS, MIN_VARIANCE, ProbeResult, probe
from crystalrep.analysis.splits import labelled_folds, subsample
from crystalrep.store import Store, content_key

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_ALPHAS", "KIND", "MIN_VARIANCE", "ProbeResult", "compare", "learning_curve", "probe",
           "probe_cached", "probe_key"]

KIND = "probes"
CACHE_VERSION = 3  # 2: near-constant training columns dropped per fold; 3: learning-curve scaler on the whole fold
_FIELDS = tuple(ProbeResult.__dataclass_fields__)


def _resolve(dataset: Any) -> Any:
    if isinstance(dataset, str):
        from crystalrep.datasets import load_dataset

        return load_dataset(dataset)
    return dataset


def _target(dataset: Any, prop: str) -> np.ndarray:
    names = [c for c in dataset.table.columns if c in dataset.properties]
    if prop not in dataset.table.columns or prop not in dataset.properties:
        raise ValueError(f"dataset {dataset.name!r} has no property {prop!r}; choose one of {', '.join(names) or 'none'}.")
    if dataset.properties[prop].kind != "numeric":
        raise ValueError(f"property {prop!r} is categorical; a ridge probe needs a numeric property.")
    return pd.to_numeric(dataset.table[prop], errors="coerce").to_numpy(dtype=np.float64)


def probe_key(embedding_key: str, property: str, y: np.ndarray, *, split: str, seed: int = 0, n_splits: int = 5,
              element: str | None = None, n_labels: int | None = None,
              alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS) -> str:
    """Store key of one probe: the embedding, the target's values, the folds and the penalties."""
    y_hash = hashlib.sha256(np.ascontiguousarray(np.asarray(y, dtype=np.float64)).tobytes()).hexdigest()
    return content_key({"v": CACHE_VERSION, "embedding": embedding_key, "property": property, "y": y_hash,
                        "split": split, "seed": seed, "n_splits": n_splits, "element": element,
                        "n_labels": n_labels, "alphas": [float(a) for a in alphas]})


def _readable(meta: Mapping[str, Any]) -> bool:
    result = meta.get("result")
    return isinstance(result, dict) and all(f in result for f in _FIELDS)


def probe_cached(key: str, run: Callable[[], ProbeResult], *, about: Mapping[str, Any] | None = None,
                 store: Store | None = None) -> tuple[ProbeResult, bool]:
    """The probe stored under ``key`` (from :func:`probe_key`), or ``run()``'s result, stored first.

    Args:
        key: The probe's store key.
        run: Computes the probe (called only on a miss).
        about: Plain values recorded beside the result (encoder, embedding key, property, split,
            ...); the checklist reads them.
        store: Artifact store (default ``$CRYSTALREP_HOME``).

    Returns:
        ``(result, from_cache)``.
    """
    store = store if store is not None else Store()

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        result = run()
        return np.asarray(result.r2_folds, dtype=np.float64), {**(about or {}), "result": result.to_dict()}

    _, meta, hit = store.memo_array(KIND, key, compute, accept=lambda _a, m: _readable(m))
    fields = meta["result"]  # ProbeResult.to_dict(): JSON lists stand for the tuples
    kwargs: dict[str, Any] = {f: tuple(fields[f]) if isinstance(fields[f], list) else fields[f] for f in _FIELDS}
    return ProbeResult(**kwargs), hit


def compare(
    dataset: Any,
    property: str,
    encoders: Sequence[str],
    *,
    split: str,
    seed: int = 0,
    store: Store | None = None,
    n_labels: int | None = None,
    n_splits: int = 5,
    element: str | None = None,
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Probe one property with several encoders on the same outer folds.

    Args:
        dataset: A Dataset, or the name of a saved one.
        property: Numeric property column to predict.
        encoders: Encoder names (e.g. ``["cgcnn-random", "magpie"]``); embeddings come from
            :func:`crystalrep.embed.embed_dataset` and are cached.
        split: ``"random"``, ``"grouped"`` or ``"element"`` (see :func:`folds`).
        seed: Seed of the outer folds and of the label subsample.
        store: Artifact store (default: ``$CRYSTALREP_HOME``).
        n_labels: If set, train on this many labels per fold (same rows for every encoder); the
            scaler is still fitted on the whole training fold.
        n_splits: Outer folds for the random and grouped splits.
        element: Element held out by the element split.
        alphas: Ridge penalties searched by the inner CV.
        progress: Called as ``progress(done, total)`` after each encoder.

    Returns:
        One row per encoder: encoder, property, split, seed, n_labels, the
        :class:`ProbeResult` fields, seconds, and whether the result came from the cache.
    """
    from crystalrep.embed import embed_dataset, embedding_key
    from crystalrep.encoders import get_encoder

    dataset, store = _resolve(dataset), store or Store()
    y = _target(dataset, property)
    fold_list = labelled_folds(dataset.table, y, split=split, seed=seed, n_splits=n_splits, element=element)
    scale_rows = None
    if n_labels is not None:  # N labels train the ridge; the whole training fold sets the columns' scale
        scale_rows = [train for train, _ in fold_list]
        fold_list = subsample(fold_list, n_labels, seed=seed)
    rows = []
    for i, name in enumerate(encoders):
        start, encoder = time.perf_counter(), get_encoder(name)
        emb_key = embedding_key(dataset, encoder)  # = f(dataset fingerprint, encoder fingerprint)
        key = probe_key(emb_key, property, y, split=split, seed=seed, n_splits=n_splits, element=element,
                        n_labels=n_labels, alphas=alphas)

        def run(encoder: Any = encoder) -> ProbeResult:
            X, _ = embed_dataset(dataset, encoder, store=store)
            return probe(X, y, fold_list, alphas=alphas, scale_rows=scale_rows)

        about = {"encoder": name, "embedding_key": emb_key, "dataset": dataset.name, "property": property,
                 "split": split, "seed": seed, "n_labels": n_labels, "element": element}
        result, cached = probe_cached(key, run, about=about, store=store)
        log.info("probe %s/%s %s: R2 %.3f ± %.3f", dataset.name, property, name, result.r2_mean, result.r2_std)
        rows.append({"encoder": name, "property": property, "split": split, "seed": seed,
                     "n_labels": n_labels, **result.to_dict(), "embedding_key": emb_key,
                     "seconds": time.perf_counter() - start, "cached": cached})
        if progress is not None:
            progress(i + 1, len(encoders))
    return pd.DataFrame(rows)


def learning_curve(
    dataset: Any,
    property: str,
    encoders: Sequence[str],
    *,
    sizes: Sequence[int] = (50, 100, 200, 500, 1000),
    split: str,
    seed: int = 0,
    store: Store | None = None,
    n_splits: int = 5,
    element: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Probe scores against the number of training labels, on the full test folds.

    For each size N, N training rows are drawn from every training fold (nested across N and
    identical across encoders). Sizes larger than the smallest training fold are skipped,
    logged, and listed in ``result.attrs["skipped_sizes"]``.

    Returns:
        The rows of :func:`compare` for every kept size (column ``n_labels``).
    """
    dataset = _resolve(dataset)
    y = _target(dataset, property)
    fold_list = labelled_folds(dataset.table, y, split=split, seed=seed, n_splits=n_splits, element=element)
    available = min(len(tr) for tr, _ in fold_list)
    kept = [int(n) for n in sizes if int(n) <= available]
    skipped = [int(n) for n in sizes if int(n) > available]
    if skipped:
        log.warning("learning curve: sizes %s exceed the %d training labels available; skipped", skipped, available)
    frames = []
    for j, n in enumerate(kept):
        frames.append(compare(dataset, property, encoders, split=split, seed=seed, store=store, n_labels=n,
                              n_splits=n_splits, element=element))
        if progress is not None:
            progress(j + 1, len(kept))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["skipped_sizes"] = skipped
    out.attrs["available"] = available
    return out
