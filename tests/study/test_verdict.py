"""The verdict, counted on hand-made numbers."""

from __future__ import annotations

import pytest

from crystalrep.study.verdict import aggregate, count_verdict


def _rows(init: str, maes: list[float], **setting: object) -> list[dict[str, object]]:
    base = {"evaluation": "probe", "backbone": "mean", "property": "p", "split": "random", "n": 50, **setting}
    return [{**base, "init": init, "seed": k // 2, "fold": k % 2, "mae": m, "r2": 1 - m} for k, m in enumerate(maes)]


def test_mean_and_std_are_over_seeds_and_folds() -> None:
    table = aggregate(_rows("random", [1.0, 2.0, 3.0, 4.0]))
    row = table.iloc[0]
    assert row["mae_mean"] == pytest.approx(2.5) and row["mae_std"] == pytest.approx(1.118034, rel=1e-6)
    assert row["count"] == 4 and row["seeds"] == 2


def test_better_worse_and_within_the_spread() -> None:
    rows = (_rows("random", [1.0, 1.2, 1.0, 1.2])                       # 1.1 ± 0.1
            + _rows("denoise", [0.8, 0.9, 0.8, 0.9])                    # 0.85 ± 0.05: gain 0.25 > 0.1
            + _rows("masking", [1.0, 1.05, 1.0, 1.05])                  # gain 0.075 < 0.1: within
            + _rows("contrastive", [1.5, 1.6, 1.5, 1.6])                # loss 0.45 > 0.1: worse
            + _rows("random", [1.0, 1.0, 1.0, 1.0], n=200)             # 1.0 ± 0
            + _rows("denoise", [0.5, 1.3, 0.5, 1.3], n=200))            # gain 0.1 < spread 0.4: within
    verdict = count_verdict(aggregate(rows))
    outcomes = {(s["task"], s["n"]): s["outcome"] for s in verdict["settings"]}
    assert outcomes == {("denoise", 50): "better", ("masking", 50): "within", ("contrastive", 50): "worse",
                        ("denoise", 200): "within"}
    assert verdict["counts"] == {"better": 1, "worse": 1, "within": 2, "total": 4}
    assert verdict["by"]["task"]["denoise"] == {"better": 1, "worse": 0, "within": 1, "total": 2}
    assert verdict["by"]["n"]["200"]["total"] == 1
    gain = next(s for s in verdict["settings"] if s["task"] == "denoise" and s["n"] == 50)
    assert gain["mae_gain"] == pytest.approx(0.25) and gain["spread"] == pytest.approx(0.1)


def test_a_difference_equal_to_the_spread_is_not_a_win() -> None:
    rows = _rows("random", [1.0, 1.5, 1.0, 1.5]) + _rows("denoise", [0.75, 1.25, 0.75, 1.25])  # gain 0.25 == std 0.25
    assert count_verdict(aggregate(rows))["counts"]["better"] == 0


def test_settings_without_a_random_baseline_are_not_counted() -> None:
    rows = _rows("random", [1.0, 1.1]) + _rows("denoise", [0.5, 0.6], backbone="set2set")
    verdict = count_verdict(aggregate(rows))
    assert verdict["counts"]["total"] == 0 and verdict["settings"] == []
