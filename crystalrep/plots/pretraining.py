"""Figures and tables of pretraining jobs: the loss curve of one job and the job table.

No Streamlit here; the inputs are what the job files hold (``list_jobs`` rows, ``metrics.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from crystalrep.plots.style import encoder_colour

if TYPE_CHECKING:
    import plotly.graph_objects as go

LOSS_LABELS = {
    "denoise": "loss: MSE of restoring displacements (σ units)",
    "contrastive": "loss: InfoNCE (nats)",
    "masking": "loss: cross-entropy of hidden elements (nats)",
}
TRAIN_COLOUR, VAL_COLOUR = "#3b6ea8", "#d1782c"
TABLE_COLUMNS = ("job", "task", "dataset", "state", "epoch", "progress", "loss", "val loss", "structures/s",
                 "heartbeat age (s)", "reason")


def loss_curve_figure(metrics: pd.DataFrame, *, task: str | None = None, title: str = "",
                      encoder: str | None = None) -> go.Figure:
    """Training and validation loss per epoch of one job.

    Args:
        metrics: Rows of ``metrics.csv`` (columns ``epoch``, ``loss``, ``val_loss``).
        task: Pretext task, for the y-axis label.
        title: Figure title.
        encoder: The job's encoder name (``cgcnn@<job-id>``): both lines take its colour from
            :func:`crystalrep.plots.style.encoder_colour`, as in the Probes and Lecture charts
            (validation dashed). Without it, blue and orange.

    Returns:
        A figure with the trace ``train`` (x = epochs, y = loss) and, when the run has a
        validation split, the trace ``validation``.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    mode = "lines+markers" if len(metrics) <= 60 else "lines"
    train, validation = (TRAIN_COLOUR, VAL_COLOUR) if encoder is None else (encoder_colour(encoder),) * 2
    fig.add_trace(go.Scatter(x=metrics["epoch"].tolist(), y=metrics["loss"].tolist(), mode=mode, name="train",
                             line={"color": train}))
    val = pd.to_numeric(metrics.get("val_loss", pd.Series(dtype=float)), errors="coerce")
    if val.notna().any():
        fig.add_trace(go.Scatter(x=metrics["epoch"].tolist(), y=val.tolist(), mode=mode, name="validation",
                                 line={"color": validation, "dash": "dash"}, marker={"symbol": "circle-open"}))
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    fig.update_xaxes(title_text="epoch", dtick=1 if len(metrics) <= 12 else None)
    fig.update_yaxes(title_text=LOSS_LABELS.get(task or "", "loss"))
    return fig


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _text(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def job_table(jobs: Sequence[Mapping[str, Any]], throughput: Mapping[str, float | None], *, now: float) -> pd.DataFrame:
    """One display row per job, newest first.

    Args:
        jobs: Rows of :func:`crystalrep.jobs.pretraining.list_jobs`.
        throughput: Job id -> structures/s of its last finished epoch (from ``metrics.csv``).
        now: Current time (``time.time()``), for the heartbeat age of active jobs.

    Returns:
        Columns :data:`TABLE_COLUMNS`; ``progress`` is a fraction in [0, 1]; the numbers are text,
        with ``"–"`` where there is none (a table would print ``None``): the heartbeat age is given
        only for queued and running jobs, the losses from the first finished epoch.
    """
    rows = []
    for job in reversed(list(jobs)):
        active = job.get("state") in ("queued", "running")
        beat = _number(job.get("heartbeat"))
        rows.append({
            "job": job.get("id"), "task": job.get("task"), "dataset": job.get("dataset"), "state": job.get("state"),
            "epoch": f"{int(job.get('epoch') or 0)}/{job.get('epochs', '?')}",
            "progress": min(max(_number(job.get("progress")) or 0.0, 0.0), 1.0),
            "loss": _text(_number(job.get("loss")), "{:.4f}"), "val loss": _text(_number(job.get("val_loss")), "{:.4f}"),
            "structures/s": _text(_number(throughput.get(str(job.get("id")))), "{:,.0f}"),
            "heartbeat age (s)": _text(now - beat if active and beat is not None else None, "{:.1f}"),
            "reason": job.get("reason") or "",
        })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
