"""Outer cross-validation folds for probes: random, grouped by chemical system, or leave-one-element-out.

A random split lets a probe "cheat" by interpolating between near-duplicates of the same chemical
system; the grouped split keeps every chemical system on one side, and the element split holds out
every crystal containing a chosen element, so the score measures extrapolation to new chemistry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SPLITS", "Fold", "elements_of", "folds", "labelled_folds", "subsample"]

Fold = tuple[np.ndarray, np.ndarray]


def elements_of(chemsys: str) -> set[str]:
    """Element symbols of a chemical system string such as ``"Ba-O-Ti"``."""
    return {e for e in str(chemsys).split("-") if e}


def _table(data: Any) -> pd.DataFrame:
    table = getattr(data, "table", data)
    if not isinstance(table, pd.DataFrame):
        raise ValueError("folds need a Dataset or its table (a pandas DataFrame).")
    return table


def _check_splits(n_items: int, n_splits: int, what: str) -> None:
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}.")
    if n_items < n_splits:
        raise ValueError(f"{n_splits} folds need at least {n_splits} {what}, got {n_items}.")


def _random(table: pd.DataFrame, *, n_splits: int, seed: int | None, element: str | None) -> list[Fold]:
    from sklearn.model_selection import KFold

    _check_splits(len(table), n_splits, "rows")
    kfold = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(kfold.split(np.zeros(len(table))))


def _grouped(table: pd.DataFrame, *, n_splits: int, seed: int | None, element: str | None) -> list[Fold]:
    from sklearn.model_selection import GroupKFold

    if "chemsys" not in table.columns:
        raise ValueError("a grouped split needs a 'chemsys' column.")
    groups = table["chemsys"].astype(str).to_numpy()
    _check_splits(len(np.unique(groups)), n_splits, "chemical systems")
    # shuffle=True so the seed decides which systems share a fold (sklearn >= 1.6).
    kfold = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(kfold.split(np.zeros(len(table)), groups=groups))


def _element(table: pd.DataFrame, *, n_splits: int, seed: int | None, element: str | None) -> list[Fold]:
    if not element:
        raise ValueError("the element split needs an element, e.g. element='O'.")
    if "chemsys" not in table.columns:
        raise ValueError("an element split needs a 'chemsys' column.")
    has = np.array([element in elements_of(c) for c in table["chemsys"]], dtype=bool)
    test, train = np.flatnonzero(has), np.flatnonzero(~has)
    if len(test) == 0:
        raise ValueError(f"no crystal contains {element!r}, so nothing can be held out.")
    if len(train) == 0:
        raise ValueError(f"every crystal contains {element!r}, so nothing is left to train on.")
    return [(train, test)]


SPLITS: dict[str, Callable[..., list[Fold]]] = {
    "random": _random,
    "grouped": _grouped,
    "element": _element,
}


def folds(
    dataset_table: Any,
    *,
    split: str = "random",
    n_splits: int = 5,
    seed: int | None = 0,
    element: str | None = None,
) -> list[Fold]:
    """Outer folds as ``(train_idx, test_idx)`` positional index arrays.

    Args:
        dataset_table: A Dataset or its table (needs ``chemsys`` for grouped/element splits).
        split: ``"random"`` (shuffled KFold), ``"grouped"`` (GroupKFold by chemical system) or
            ``"element"`` (one fold: test = rows containing ``element``, train = all others).
        n_splits: Number of folds (ignored by the element split).
        seed: Shuffling seed for the random and grouped splits.
        element: Element symbol held out by the element split.

    Returns:
        One ``(train_idx, test_idx)`` pair per fold; the test sets of random/grouped folds
        partition the rows.

    Raises:
        ValueError: Unknown split name, too few rows/systems, or an unusable element.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    table = _table(dataset_table)
    out = SPLITS[split](table, n_splits=n_splits, seed=seed, element=element)
    return [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)) for tr, te in out]


def subsample(fold_list: list[Fold], n_labels: int, *, seed: int = 0) -> list[Fold]:
    """Keep ``n_labels`` training rows per fold; test rows are untouched.

    The rows kept come from one permutation per fold (seeded by ``seed`` and the fold number),
    so a smaller ``n_labels`` keeps a subset of a larger one and every encoder sees the same rows.

    Raises:
        ValueError: If ``n_labels`` is not positive or exceeds a fold's training rows.
    """
    if n_labels < 1:
        raise ValueError(f"n_labels must be positive, got {n_labels}.")
    smallest = min(len(tr) for tr, _ in fold_list)
    if n_labels > smallest:
        raise ValueError(f"n_labels={n_labels} exceeds the smallest training fold ({smallest} rows).")
    out = []
    for i, (train, test) in enumerate(fold_list):
        rng = np.random.default_rng([seed, i])
        out.append((np.sort(rng.permutation(train)[:n_labels]), test))
    return out


def labelled_folds(
    table: pd.DataFrame,
    y: np.ndarray,
    *,
    split: str = "random",
    n_splits: int = 5,
    seed: int | None = 0,
    element: str | None = None,
) -> list[Fold]:
    """:func:`folds` built over the rows whose target ``y`` is finite, as positions into ``table``."""
    rows = np.flatnonzero(np.isfinite(np.asarray(y, dtype=np.float64)))
    inner = folds(table.iloc[rows], split=split, n_splits=n_splits, seed=seed, element=element)
    return [(rows[tr], rows[te]) for tr, te in inner]
