"""Pretraining page glue: the launch form's keys, job files read for display, cancel/resume/use.

The page never trains: it starts ``python -m crystalrep pretrain`` through :mod:`crystalrep.jobs.pretraining`
and afterwards only reads the job folders, so a refresh or a server restart loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from crystalrep import runs
from crystalrep.jobs import pretraining as jobs
from crystalrep.plots import pretraining as plots_pretraining
from crystalrep.pretrain import PretrainConfig
from ui import state
from ui.messages import sentence

if TYPE_CHECKING:
    import plotly.graph_objects as go

JOB = "pretrain.job"
MESSAGE = "pretrain.message"
FIELDS = ("task", "epochs", "batch_size", "lr", "seed", "sigma", "tau", "mask_rate")  # form widget keys: pretrain.<field>
LOG_BYTES = 6_000


def widget_key(field: str) -> str:
    """Session-state key of a launch-form field."""
    return f"pretrain.{field}"


def defaults() -> dict[str, Any]:
    """The form's starting values: :class:`PretrainConfig`'s defaults."""
    return {k: v for k, v in PretrainConfig().to_dict().items() if k in FIELDS}


def spec_from_form(dataset: str) -> dict[str, Any]:
    """The job spec the form describes: the sidebar dataset and the form's options."""
    start = defaults()
    return {"dataset": dataset, **{f: type(start[f])(st.session_state.get(widget_key(f), start[f])) for f in FIELDS}}


def launch(dataset: str) -> None:
    """Start a job from the form; the outcome is shown on the next line of the page."""
    try:
        job_id = jobs.start_job(spec_from_form(dataset))
    except (ValueError, OSError) as exc:  # DatasetError is a ValueError; OSError: full disk, no fork
        st.session_state[MESSAGE] = ("error", f"The job could not start: {sentence(exc)}")
        return
    st.session_state[JOB] = job_id
    st.session_state[MESSAGE] = ("success", f"Started job {job_id}; its status updates below every 2 s.")


def job_list() -> list[dict[str, Any]]:
    """Every job's status (a vanished process shows as failed), oldest first."""
    return jobs.list_jobs()


def _stamp(job_id: str, name: str) -> str:
    path = runs.jobs_home() / job_id / name
    try:
        stat = path.stat()
    except OSError:
        return ""
    return f"{stat.st_mtime_ns}:{stat.st_size}"


@st.cache_data(max_entries=64, show_spinner=False)
def _metrics(job_id: str, stamp: str) -> pd.DataFrame:
    try:
        return pd.read_csv(runs.jobs_home() / job_id / "metrics.csv")
    except (OSError, ValueError):  # ValueError covers pandas' empty-file and parser errors
        return pd.DataFrame(columns=["epoch", "loss", "val_loss", "structures_per_s"])


def metrics(job_id: str) -> pd.DataFrame:
    """Rows of the job's ``metrics.csv`` (re-read only when the file changes)."""
    return _metrics(job_id, _stamp(job_id, "metrics.csv"))


def table(rows: list[dict[str, Any]], now: float) -> pd.DataFrame:
    """The job table (:func:`crystalrep.plots.pretraining.job_table`) with each job's last throughput."""
    rate = {}
    for row in rows:
        m = metrics(row["id"])
        rate[row["id"]] = float(m["structures_per_s"].iloc[-1]) if len(m) and "structures_per_s" in m else None
    return plots_pretraining.job_table(rows, rate, now=now)


@st.cache_data(max_entries=64, show_spinner=False)
def _figure(job_id: str, stamp: str, task: str, title: str) -> go.Figure:
    return plots_pretraining.loss_curve_figure(metrics(job_id), task=task, title=title, encoder=f"cgcnn@{job_id}")


def loss_figure(job_id: str, task: str, title: str) -> go.Figure:
    """Loss curve of a job, rebuilt only when its ``metrics.csv`` changes."""
    return _figure(job_id, _stamp(job_id, "metrics.csv"), task, title)


def spec(job_id: str) -> dict[str, Any]:
    """The job's ``spec.json``."""
    return runs.read_json(runs.jobs_home() / job_id / "spec.json")


def log_tail(job_id: str) -> str:
    """The last lines of the job's ``log.txt`` (empty when it has written nothing)."""
    path = runs.jobs_home() / job_id / "log.txt"
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = text.splitlines()
    return "\n".join(lines[1:] if len(text) >= LOG_BYTES else lines)  # drop a cut first line


def checkpoint_epochs(job_id: str) -> list[int]:
    """Epochs with a checkpoint in the job folder."""
    return list(runs.checkpoint_files(runs.jobs_home() / job_id))


def act(action: str, job_id: str) -> str:
    """Cancel or resume a job; returns one error sentence, or ``""`` on success."""
    try:
        (jobs.cancel_job if action == "cancel" else jobs.resume_job)(job_id)
    except (ValueError, OSError) as exc:
        return sentence(exc)
    return ""


def use_encoder(name: str) -> None:
    """``on_click``: add ``name`` to the sidebar's encoders and redraw the whole app.

    The button sits in the job fragment, so a click reruns only the fragment and the sidebar kept
    showing the old choice (its next edit then sent that old list back). ``st.rerun()`` inside the
    callback turns the click into a full-app rerun; the button's own return value cannot, since it
    is already disabled (the encoder is chosen) when the fragment redraws it.
    """
    chosen = state.current_encoders()
    if name not in chosen:
        st.session_state[state.ENCODERS] = [*chosen, name]
    st.rerun()
