"""Mean ± std over seeds × folds, and the verdict counted like the CDSSL paper's.

A *setting* is (evaluation, backbone, property, split, N, pretext task). In each, the task's
encoders and the random-init encoders of the same backbone are scored on the same folds with the
same N labels. The verdict rule, on test MAE (lower is better; the metric New et al. report):

    SSL beats random init beyond the spread  ⇔  mean(MAE_random) − mean(MAE_SSL) > max(std_SSL, std_random)

with means and (population) standard deviations over every seed × fold value. "Worse beyond the
spread" is the mirror image; everything else is "within the spread". R² is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["OUTCOMES", "RULE", "aggregate", "count_verdict"]

RULE = ("SSL beats random init in a setting when mean MAE(random) - mean MAE(SSL) > max(std MAE(SSL), "
        "std MAE(random)), means and population stds over all seeds x folds; worse when the mirror "
        "inequality holds; otherwise within the spread")
OUTCOMES = ("better", "worse", "within")
SETTING = ["evaluation", "backbone", "property", "split", "n"]


def aggregate(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Mean and std of MAE and R² per (setting, init) over seeds × folds; ``count`` values each."""
    frame = pd.DataFrame([r for r in rows if "mae" in r])
    if frame.empty:
        return pd.DataFrame(columns=[*SETTING, "init", "mae_mean", "mae_std", "r2_mean", "r2_std", "count", "seeds"])
    grouped = frame.groupby([*SETTING, "init"], sort=True)
    out = grouped.agg(mae_mean=("mae", "mean"), mae_std=("mae", lambda v: float(np.std(v))),
                      r2_mean=("r2", "mean"), r2_std=("r2", lambda v: float(np.std(v))),
                      count=("mae", "size"), seeds=("seed", "nunique"))
    return out.reset_index()


def _outcome(ssl: pd.Series, random: pd.Series) -> tuple[str, float, float]:
    diff = float(random["mae_mean"] - ssl["mae_mean"])
    spread = float(max(ssl["mae_std"], random["mae_std"]))
    if diff > spread:
        return "better", diff, spread
    if -diff > spread:
        return "worse", diff, spread
    return "within", diff, spread


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = {name: int((frame["outcome"] == name).sum()) for name in OUTCOMES}
    return {**counts, "total": int(len(frame))}


def count_verdict(table: pd.DataFrame, *, random_init: str = "random") -> dict[str, Any]:
    """Compare every task with random init in every setting of an :func:`aggregate` table.

    Returns:
        ``rule``, ``settings`` (one record per setting: means, stds, difference, spread, outcome),
        ``counts`` (better / worse / within / total) and the same counts ``by`` evaluation,
        backbone, task, property, split and N.
    """
    settings = []
    base = table[table["init"] == random_init].set_index(SETTING)
    for _, row in table[table["init"] != random_init].iterrows():
        key = tuple(row[c] for c in SETTING)
        if key not in base.index:
            continue
        ref = base.loc[key]
        outcome, diff, spread = _outcome(row, ref)
        settings.append({**{c: row[c] for c in SETTING}, "task": row["init"],
                         "ssl_mae": float(row["mae_mean"]), "ssl_mae_std": float(row["mae_std"]),
                         "random_mae": float(ref["mae_mean"]), "random_mae_std": float(ref["mae_std"]),
                         "ssl_r2": float(row["r2_mean"]), "random_r2": float(ref["r2_mean"]),
                         "mae_gain": diff, "spread": spread, "outcome": outcome})
    frame = pd.DataFrame(settings, columns=[*SETTING, "task", "outcome"] if not settings else None)
    by = {dim: {str(value): _counts(part) for value, part in frame.groupby(dim, sort=True)}
          for dim in ("evaluation", "backbone", "task", "property", "split", "n")} if settings else {}
    return {"rule": RULE, "metric": "mae", "settings": settings, "counts": _counts(frame), "by": by}
