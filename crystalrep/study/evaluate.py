"""Score one encoder on one evaluation set: linear probes and small fine-tunes, per fold.

Every encoder sees the same outer folds (seeded by ``plan.fold_seed``) and, at each N, the same
N training labels (:func:`crystalrep.analysis.splits.subsample`), so results pair across seeds,
tasks and backbones. Probes score all ``n_splits`` folds; fine-tunes ``plan.finetune_fold_ids(seed)``.
Rows are cached in the store (kind ``"study_eval"``) by encoder fingerprint, evaluation set and
the evaluation settings, so an interrupted study does not redo finished encoders.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.analysis.probes import probe
from crystalrep.analysis.splits import Fold, labelled_folds, subsample
from crystalrep.datasets import Dataset
from crystalrep.store import Store, content_key
from crystalrep.study.finetune import finetune
from crystalrep.study.plan import EvalProperty, StudyPlan

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

log = logging.getLogger(__name__)

__all__ = ["EvalSet", "evaluate_encoder", "pool_rows", "prepare"]

KIND = "study_eval"
VERSION = 1
ROWS = "rows.json"


@dataclass
class EvalSet:
    """One property's evaluation pool: crystals, targets, prebuilt graphs and the outer folds."""

    prop: EvalProperty
    dataset: Dataset
    y: np.ndarray
    graphs: list[Data]
    folds: dict[str, list[Fold]]


def pool_rows(dataset: Dataset, column: str, *, cap: int | None, seed: int) -> np.ndarray:
    """Rows with a finite ``column`` value; a seeded ``cap`` of them when set (sorted)."""
    if column not in dataset.table.columns:
        raise ValueError(f"dataset {dataset.name!r} has no column {column!r}.")
    rows = np.flatnonzero(np.isfinite(pd.to_numeric(dataset.table[column], errors="coerce").to_numpy(float)))
    if cap is not None and cap < len(rows):
        rows = np.sort(np.random.default_rng(seed).permutation(rows)[:cap])
    return rows


def prepare(prop: EvalProperty, pool: Dataset, plan: StudyPlan) -> EvalSet:
    """Targets, graphs (at the cgcnn cutoff) and the outer folds of every split, for one pool."""
    from crystalrep.encoders.cgcnn import CGCNNConfig
    from crystalrep.graphs import GraphConfig, dataset_graphs

    y = pd.to_numeric(pool.table[prop.column], errors="coerce").to_numpy(np.float64)
    folds = {split: labelled_folds(pool.table, y, split=split, n_splits=plan.n_splits, seed=plan.fold_seed)
             for split in plan.splits}
    graphs = dataset_graphs(pool, config=GraphConfig(cutoff=CGCNNConfig().cutoff))
    return EvalSet(prop=prop, dataset=pool, y=y, graphs=graphs, folds=folds)


def _key(encoder: CGCNNEncoder, evalset: EvalSet, plan: StudyPlan, seed: int) -> str:
    y_hash = hashlib.sha256(np.ascontiguousarray(evalset.y).tobytes()).hexdigest()
    return content_key({"v": VERSION, "encoder": encoder.fingerprint, "pool": evalset.dataset.fingerprint,
                        "y": y_hash, "sizes": list(plan.sizes), "splits": list(plan.splits), "n_splits": plan.n_splits,
                        "fold_seed": plan.fold_seed, "ft_folds": plan.finetune_folds, "seed": seed,
                        "finetune": plan.finetune.to_dict()})


def _folds_at(fold_list: list[Fold], n: int, seed: int) -> list[Fold] | None:
    """The folds with ``n`` training labels each (``n == 0``: all), or ``None`` when a fold has fewer."""
    if n == 0:
        return fold_list
    if n > min(len(train) for train, _ in fold_list):
        return None
    return subsample(fold_list, n, seed=seed)


def evaluate_encoder(encoder: CGCNNEncoder, evalset: EvalSet, plan: StudyPlan, *, seed: int,
                     store: Store | None = None) -> list[dict[str, Any]]:
    """Probe and fine-tune rows of one encoder: one row per (evaluation, split, N, fold).

    Args:
        encoder: The encoder to score (its model is copied for fine-tuning).
        evalset: The pool from :func:`prepare`.
        plan: Sizes, splits, folds and the fine-tune configuration.
        seed: The encoder's seed (seeds the fine-tunes' inner splits, heads and batch order).
        store: Cache for the rows and the embeddings (default ``$CRYSTALREP_HOME``).

    Returns:
        Rows with ``evaluation`` (probe | finetune), ``split``, ``n`` (0 = all), ``fold``, ``r2``,
        ``mae``, ``n_train``, ``n_test``; a size larger than a training fold gives a row with
        ``skipped`` set instead of scores.
    """
    from crystalrep.embed import embed_dataset

    store = store if store is not None else Store()
    key = _key(encoder, evalset, plan, seed)
    cached = store.load_files(KIND, key, required=(ROWS,))
    if cached is not None:
        return json.loads(cached[ROWS])
    X, _ = embed_dataset(evalset.dataset, encoder, store=store, device="cpu")
    rows: list[dict[str, Any]] = []
    for split, fold_list in evalset.folds.items():
        for n in plan.sizes:
            at = _folds_at(fold_list, n, plan.fold_seed)
            if at is None:
                rows.append({"evaluation": "both", "split": split, "n": n, "skipped": "fewer training rows than N"})
                continue
            result = probe(X, evalset.y, at, scale_rows=None if n == 0 else [train for train, _ in fold_list])
            rows += [{"evaluation": "probe", "split": split, "n": n, "fold": k, "r2": r2, "mae": mae,
                      "n_train": len(at[k][0]), "n_test": len(at[k][1])}
                     for k, (r2, mae) in enumerate(zip(result.r2_folds, result.mae_folds, strict=True))]
            for k in plan.finetune_fold_ids(seed):
                ft = finetune(encoder.model, evalset.graphs, evalset.y, at[k][0], at[k][1], config=plan.finetune,
                              seed=int(np.random.default_rng([seed, k, n]).integers(2**31)))
                rows.append({"evaluation": "finetune", "split": split, "n": n, "fold": k, "r2": ft.r2, "mae": ft.mae,
                             "n_train": ft.n_train, "n_val": ft.n_val, "n_test": ft.n_test, "steps": ft.steps,
                             "best_step": ft.best_step, "seconds": round(ft.seconds, 3)})
    store.save_files(KIND, key, {ROWS: json.dumps(rows, allow_nan=True).encode()}, replace=True)
    log.info("evaluated %s on %s: %d rows", encoder.name, evalset.prop.label, len(rows))
    return rows
