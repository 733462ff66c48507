"""Linear probes on frozen embeddings: standardise + ridge, penalty chosen by inner CV.

The encoder is frozen, so embeddings are plain inputs. Within each outer fold the scaler and
the ridge penalty (``RidgeCV``'s efficient leave-one-out CV over ``alphas``) are fitted on the
training side only; the test rows are touched once, to score. Rows whose target is NaN are
dropped.

A learning curve trains on N labelled rows of each training fold, but the scaler sees the whole
training fold (``scale_rows``): N counts labels, not crystals, and a column's spread measured on 50
rows can be absurdly small. Magpie's "minimum ground-state magnetic moment" is 0 for 98.5% of the
default set, 2e-5..3e-4 μB for Sc, Ti and Mn and 0.3..2.1 μB for Pu, Ni, Co and Fe; a 200-row
sample holding only the tiny values has std 3e-5, so bcc-Ni in the test fold became z ≈ 19,000
and a prediction of −4,658 eV/atom (grouped learning curve, R² −8996.57 at N = 200). Over the
whole training fold the std is 0.12.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crystalrep.analysis.splits import Fold

__all__ = ["DEFAULT_ALPHAS", "MIN_VARIANCE", "ProbeResult", "probe"]

DEFAULT_ALPHAS = np.logspace(-3, 3, 13)
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
