"""Figure and table builders of the Pretraining page."""

from __future__ import annotations

import math

import pandas as pd

from crystalrep.plots.pretraining import LOSS_LABELS, TABLE_COLUMNS, job_table, loss_curve_figure


def test_loss_curve_has_train_and_validation_traces() -> None:
    metrics = pd.DataFrame({"epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.7, 1.6]})
    fig = loss_curve_figure(metrics, task="masking", title="Loss per epoch")
    assert [t.name for t in fig.data] == ["train", "validation"]
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [2.0, 1.5, 1.2]
    assert list(fig.data[1].y) == [2.1, 1.7, 1.6]
    assert fig.layout.yaxis.title.text == LOSS_LABELS["masking"] and fig.layout.xaxis.title.text == "epoch"
    assert fig.layout.title.text == "Loss per epoch"


def test_loss_curve_takes_the_jobs_encoder_colour() -> None:
    from crystalrep.plots.style import encoder_colour

    metrics = pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.5], "val_loss": [2.1, 1.7]})
    fig = loss_curve_figure(metrics, encoder="cgcnn@masking-1")
    assert fig.data[0].line.color == fig.data[1].line.color == encoder_colour("cgcnn@masking-1")
    assert fig.data[1].line.dash == "dash"
    plain = loss_curve_figure(metrics)
    assert plain.data[0].line.color != plain.data[1].line.color


def test_loss_curve_without_validation_split_has_one_trace() -> None:
    metrics = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [math.nan, math.nan]})
    fig = loss_curve_figure(metrics, task="denoise")
    assert [t.name for t in fig.data] == ["train"]
    assert "σ units" in fig.layout.yaxis.title.text


def test_more_epochs_change_the_curve() -> None:
    short = loss_curve_figure(pd.DataFrame({"epoch": [1], "loss": [1.0], "val_loss": [1.1]}))
    longer = loss_curve_figure(pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}))
    assert len(short.data[0].x) == 1 and len(longer.data[0].x) == 2


def test_job_table_newest_first_with_heartbeat_only_for_active_jobs() -> None:
    jobs = [
        {"id": "old", "task": "denoise", "dataset": "d", "state": "done", "epoch": 3, "epochs": 3, "progress": 1.0,
         "loss": 0.5, "val_loss": 0.6, "heartbeat": 100.0},
        {"id": "new", "task": "masking", "dataset": "d", "state": "running", "epoch": 1, "epochs": 4, "progress": 0.3,
         "loss": None, "heartbeat": 190.0},
        {"id": "dead", "task": "contrastive", "dataset": "d", "state": "failed", "reason": "process died",
         "heartbeat": 50.0, "progress": 1.7},
    ]
    table = job_table(jobs, {"old": 120.5}, now=200.0)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["job"].tolist() == ["dead", "new", "old"]
    assert table["epoch"].tolist() == ["0/?", "1/4", "3/3"]
    assert table["heartbeat age (s)"].tolist() == ["–", "10.0", "–"]  # a dash where a table would print None
    assert table["progress"].tolist() == [1.0, 0.3, 1.0]
    assert table["structures/s"].tolist() == ["–", "–", "120"] and table["loss"].tolist() == ["–", "–", "0.5000"]
    assert not table.isna().any().any()
    assert table["reason"].iloc[0] == "process died"
