"""Probe figure builders and card texts: what is drawn is the numbers passed in."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crystalrep.plots import probes as plots_probes


def _curve(encoders: dict[str, list[float]], std: float = 0.05) -> pd.DataFrame:
    sizes = [50, 100, 200, 500]
    rows = [{"encoder": name, "n_labels": n, "r2_mean": r2, "r2_std": std}
            for name, values in encoders.items() for n, r2 in zip(sizes, values, strict=True)]
    return pd.DataFrame(rows)


def test_pm_uses_a_minus_sign_and_dashes_nan() -> None:
    assert plots_probes.pm(0.8123, 0.031) == "0.81 ± 0.03"
    assert plots_probes.pm(-2.8, 6.3) == "−2.80 ± 6.30"
    assert plots_probes.pm(float("nan"), 0.1) == "—"


def test_card_texts_carry_unit_n_and_train_size() -> None:
    row = {"r2_mean": 0.7, "r2_std": 0.02, "mae_mean": 0.043, "mae_std": 0.004, "n": 1885, "n_train": 1508.0,
           "r2_folds": [0.7] * 5}
    texts = plots_probes.card_texts(row, "eV/atom")
    assert texts == {"r2": "0.70 ± 0.02", "mae_label": "MAE (eV/atom)", "mae": "0.043 ± 0.004",
                     "caption": "n = 1,885 labelled · train 1,508 per fold · 5 folds"}
    one = plots_probes.card_texts({**row, "r2_std": 0.0, "mae_std": 0.0, "r2_folds": [0.7]}, "")
    assert one["mae_label"] == "MAE" and one["caption"].endswith("1 fold")
    assert one["r2"] == "0.70 (1 fold)" and one["mae"] == "0.043 (1 fold)"  # no "± 0.00" for a single fold


def test_a_single_fold_has_no_spread_in_the_table_or_the_curve() -> None:
    rows = pd.DataFrame({"encoder": ["magpie", "magpie"], "split": ["random", "element"], "r2_mean": [0.8, -0.25],
                         "r2_std": [0.01, 0.0], "r2_folds": [[0.8] * 5, [-0.25]]})
    table = plots_probes.split_table(rows)
    assert table.loc[0, "R² random"] == "0.80 ± 0.01" and table.loc[0, "R² element"] == "−0.25 (1 fold)"
    curve = _curve({"magpie": [0.2, 0.4, 0.6, 0.7]}, std=0.0).assign(r2_folds=[[0.2], [0.4], [0.6], [0.7]])
    fig = plots_probes.learning_curve_figure(curve, title="t")
    assert "(1 fold)" in fig.data[1].hovertemplate and "±" not in fig.data[1].hovertemplate
    assert fig.layout.yaxis.title.text == "test R² (one fold)"


def test_encoder_colours_come_from_the_shared_table() -> None:
    from crystalrep.plots.style import encoder_colour

    fig = plots_probes.learning_curve_figure(_curve({"soap": [0.1] * 4, "magpie": [0.2] * 4}), title="t")
    assert fig.data[1].line.color == encoder_colour("soap") and fig.data[3].line.color == encoder_colour("magpie")
    assert fig.data[0].fillcolor == encoder_colour("soap")


def test_split_table_is_encoder_by_split() -> None:
    rows = pd.DataFrame({"encoder": ["magpie", "soap", "magpie", "soap"], "split": ["grouped", "grouped", "random", "random"],
                         "r2_mean": [0.5, 0.1, 0.8, 0.7], "r2_std": [0.1, 0.2, 0.01, 0.02]})
    table = plots_probes.split_table(rows)
    assert table.columns.tolist() == ["encoder", "R² random", "R² grouped"]
    assert table["encoder"].tolist() == ["magpie", "soap"]
    assert table["R² random"].tolist() == ["0.80 ± 0.01", "0.70 ± 0.02"]


def test_learning_curve_has_a_band_and_a_line_per_encoder() -> None:
    curve = _curve({"magpie": [0.2, 0.4, 0.6, 0.7], "soap": [0.1, 0.3, 0.5, 0.6]})
    fig = plots_probes.learning_curve_figure(curve, title="t")
    assert [t.name for t in fig.data] == ["magpie ± std", "magpie", "soap ± std", "soap"]
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [50, 100, 200, 500]
    np.testing.assert_allclose(fig.data[1].y, [0.2, 0.4, 0.6, 0.7])
    np.testing.assert_allclose(fig.data[0].y[:4], [0.25, 0.45, 0.65, 0.75])  # mean + std, then back along mean − std
    assert not fig.layout.annotations


def test_other_scores_change_the_figure_and_low_values_are_named() -> None:
    a = plots_probes.learning_curve_figure(_curve({"magpie": [0.2, 0.4, 0.6, 0.7]}), title="t")
    b = plots_probes.learning_curve_figure(_curve({"magpie": [-3.2, 0.4, 0.6, 0.7]}), title="t")
    assert list(a.data[1].y) != list(b.data[1].y)
    assert b.layout.yaxis.range[0] == plots_probes.R2_FLOOR
    assert "magpie at N=50: −3.20" in b.layout.annotations[0].text
