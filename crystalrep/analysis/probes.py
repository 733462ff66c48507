"""Linear probes on frozen embeddings: standardise + ridge, penalty chosen by inner CV.

The encoder is frozen, so embeddings are plain inputs. Within each outer fold the scaler and
the ridge penalty (``RidgeCV``'s efficient leave-one-out CV over ``alphas``) are fitted on the
training side only; the test rows are touched once, to score. Rows whose target is NaN are
dropped. ``compare`` and ``learning_curve`` run every encoder on the same folds and cache each
result in the store (kind ``"probes"``), so the dashboard can show them instantly.

A learning curve trains on N labelled rows of each training fold, but the scaler sees the whole
training fold: N counts labels, not crystals, and a column's spread measured on 50 rows can be
absurdly small. Magpie's "minimum ground-state magnetic moment" is 0 for 98.5% of the default
set, 2e-5..3e-4 μB for Sc, Ti and Mn and 0.3..2.1 μB for Pu, Ni, Co and Fe; a 200-row sample
holding only the tiny values has std 3e-5, so bcc-Ni in the test fold became z ≈ 19,000 and a
prediction of −4,658 eV/atom (grouped learning curve, R² −8996.57 at N = 200). Over the whole
training fold the std is 0.12.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.analysis.splits import Fold, labelled_folds, subsample
from crystalrep.store import Store, content_key

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_ALPHAS", "ProbeResult", "compare", "learning_curve", "probe"]

DEFAULT_ALPHAS = np.logspace(-3, 3, 13)
CACHE_VERSION = 3  # 2: near-constant training columns dropped per fold; 3: learning-curve scaler on the whole fold
# Training-fold variance below this is float noise (a column constant up to rounding); standardising
# it would blow a test row up by ~1e7 and the ridge with it (seen: Magpie on perov_5, R² −5e5).
MIN_VARIANCE = 1e-10


@dataclass(frozen=True)
class ProbeResult:
    """Scores of one probe over the outer folds (means and population std over folds).

    Attributes:
        r2_mean: Mean test R².
        r2_std: Standard deviation of test R² over folds (0 for a single fold).
        mae_mean: Mean test mean absolute error, in the property's unit.
        mae_std: Standard deviation of the MAE over folds.
        n: Labelled rows used (train ∪ test over all folds).
        n_train: Mean number of training rows per fold.
        r2_folds: R² per fold.
        mae_folds: MAE per fold.
        alphas: Ridge penalty chosen by inner CV in each fold.
        n_test_folds: Test rows per fold.
    """

    r2_mean: float
    r2_std: float
    mae_mean: float
    mae_std: float
    n: int
    n_train: float
    r2_folds: tuple[float, ...]
    mae_folds: tuple[float, ...]
    alphas: tuple[float, ...]
    n_test_folds: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-typed dictionary (lists instead of tuples), ready for JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def probe(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[Fold],
    *,
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    scale_rows: Sequence[np.ndarray] | None = None,
) -> ProbeResult:
    """Fit StandardScaler + RidgeCV on each training fold and score it on the test fold.

    Columns that are constant (up to float noise) where the scaler is fitted are dropped. Test rows are
    not clipped: per-column clipping breaks the cancellations between correlated columns that the
    ridge relies on (it turned SOAP's grouped perov_5 R² from 0.47 into -0.14), so a fold where the
    head extrapolates badly shows up as a large std instead.

    Args:
        X: Embeddings, shape ``(n, d)``; must be finite.
        y: Targets, shape ``(n,)``; NaN targets are dropped from train and test.
        folds: ``(train_idx, test_idx)`` pairs of positions into ``X``.
        alphas: Ridge penalties searched by the inner (leave-one-out) CV.
        scale_rows: Per fold, the rows the scaler is fitted on (default: the fold's training
            rows). A learning curve passes the whole training fold, so that a subsample of N
            labels does not set each column's spread (see the module docstring); they must not
            overlap the fold's test rows.

    Returns:
        The fold scores and their summary.

    Raises:
        ValueError: Shape mismatch, non-finite embeddings, no folds, a fold with fewer than 2
            labelled training rows or no labelled test rows, or scale rows that are not one
            test-free set per fold.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, d) with one row per target; got {X.shape} for {len(y)} targets.")
    if not np.isfinite(X).all():
        raise ValueError("the embedding contains NaN or infinite values.")
    if len(folds) == 0:
        raise ValueError("a probe needs at least one fold.")
    if scale_rows is not None and len(scale_rows) != len(folds):
        raise ValueError(f"scale_rows needs one row set per fold: {len(scale_rows)} for {len(folds)} folds.")
    labelled = np.isfinite(y)
    r2s, maes, chosen, n_train, n_test, used = [], [], [], [], [], set()
    for k, (train, test) in enumerate(folds):
        train = np.asarray(train)[labelled[train]]
        test = np.asarray(test)[labelled[test]]
        if len(train) < 2 or len(test) == 0:
            raise ValueError(f"fold {k} has {len(train)} labelled training and {len(test)} test rows.")
        fit_rows = train if scale_rows is None else np.union1d(train, np.asarray(scale_rows[k], dtype=np.int64))
        if np.intersect1d(fit_rows, test).size:
            raise ValueError(f"fold {k}: the scaler's rows overlap its test rows.")
        scaler = StandardScaler().fit(X[fit_rows])
        keep = scaler.var_ > MIN_VARIANCE
        model = RidgeCV(alphas=np.asarray(alphas, dtype=float))
        if keep.any():
            model.fit(scaler.transform(X[train])[:, keep], y[train])
            pred = model.predict(scaler.transform(X[test])[:, keep])
            chosen.append(float(model.alpha_))
        else:  # a constant embedding carries no information: predict the training mean
            pred = np.full(len(test), y[train].mean())
            chosen.append(float("nan"))
        r2s.append(float(r2_score(y[test], pred)) if len(test) > 1 else float("nan"))
        maes.append(float(mean_absolute_error(y[test], pred)))
        n_train.append(len(train))
        n_test.append(len(test))
        used.update(train.tolist())
        used.update(test.tolist())
    return ProbeResult(
        r2_mean=float(np.mean(r2s)),
        r2_std=float(np.std(r2s)),
        mae_mean=float(np.mean(maes)),
        mae_std=float(np.std(maes)),
        n=len(used),
        n_train=float(np.mean(n_train)),
        r2_folds=tuple(r2s),
        mae_folds=tuple(maes),
        alphas=tuple(chosen),
        n_test_folds=tuple(n_test),
    )


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


def _from_cache(store: Store, key: str) -> ProbeResult | None:
    hit = store.load_array("probes", key)
    if hit is None:
        return None
    fields = dict(hit[1]["result"])  # ProbeResult.to_dict(): JSON lists stand for the tuples
    return ProbeResult(
        r2_mean=fields["r2_mean"],
        r2_std=fields["r2_std"],
        mae_mean=fields["mae_mean"],
        mae_std=fields["mae_std"],
        n=fields["n"],
        n_train=fields["n_train"],
        r2_folds=tuple(fields["r2_folds"]),
        mae_folds=tuple(fields["mae_folds"]),
        alphas=tuple(fields["alphas"]),
        n_test_folds=tuple(fields["n_test_folds"]),
    )


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
    y_hash = hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()
    rows = []
    for i, name in enumerate(encoders):
        start, encoder = time.perf_counter(), get_encoder(name)
        emb_key = embedding_key(dataset, encoder)  # = f(dataset fingerprint, encoder fingerprint)
        key = content_key({
            "v": CACHE_VERSION, "embedding": emb_key, "property": property, "y": y_hash, "split": split,
            "seed": seed, "n_splits": n_splits, "element": element, "n_labels": n_labels, "alphas": [float(a) for a in alphas],
        })
        result, cached = _from_cache(store, key), True
        if result is None:
            X, _ = embed_dataset(dataset, encoder, store=store)
            result, cached = probe(X, y, fold_list, alphas=alphas, scale_rows=scale_rows), False
            meta = {"encoder": name, "embedding_key": emb_key, "dataset": dataset.name, "property": property,
                    "split": split, "seed": seed, "n_labels": n_labels, "element": element, "result": result.to_dict()}
            store.save_array("probes", key, np.asarray(result.r2_folds, dtype=np.float64), meta)
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
