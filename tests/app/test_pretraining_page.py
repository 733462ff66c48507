"""The Pretraining page under AppTest: launch form, job table, a finished job's curve, a dead job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, save_dataset
from crystalrep.jobs.pretraining import DIED, create_job
from crystalrep.runs import jobs_home, read_json
from crystalrep.store import atomic_write_json

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/pretraining.py"


@pytest.fixture
def tiny(tiny_structures: list[Structure]) -> Dataset:
    ds = Dataset.from_structures("tiny", [f"t{i}" for i in range(len(tiny_structures))], tiny_structures,
                                 properties={"volume": [s.volume for s in tiny_structures]})
    save_dataset(ds)
    return ds


def _page(encoders: list[str] | None = None) -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "tiny"
    if encoders is not None:
        at.session_state[state.ENCODERS] = encoders
    at.run()
    return at.switch_page(PAGE).run()


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "success", "warning", "code")
                     for e in getattr(at, kind))


def test_page_without_jobs_explains_how_to_start_one(tiny: Dataset) -> None:
    at = _page()
    assert not at.exception
    assert any("No pretraining job yet" in e.value and "crystalrep pretrain --dataset tiny" in e.value for e in at.info)
    assert at.selectbox(key="pretrain.task").options == ["denoise", "contrastive", "masking"]
    assert at.number_input(key="pretrain.epochs").value == 10 and at.number_input(key="pretrain.mask_rate").value == 0.15


def test_submitting_the_form_starts_a_job_with_the_spec(tiny: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_start(spec: dict[str, Any]) -> str:
        calls.append(spec)
        return "masking-fake"

    monkeypatch.setattr("crystalrep.jobs.pretraining.start_job", fake_start)
    at = _page()
    at.selectbox(key="pretrain.task").select("masking")
    at.number_input(key="pretrain.epochs").set_value(3)
    at.number_input(key="pretrain.seed").set_value(7)
    at.number_input(key="pretrain.mask_rate").set_value(0.3)
    at.button(key="pretrain.start").click().run()
    assert not at.exception
    assert calls == [{"dataset": "tiny", "task": "masking", "epochs": 3, "batch_size": 32, "lr": 1e-3, "seed": 7,
                      "sigma": 0.1, "tau": 0.1, "mask_rate": 0.3}]
    assert any("masking-fake" in e.value for e in at.success)


def test_a_refused_job_is_one_sentence(tiny: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(spec: dict[str, Any]) -> str:
        raise ValueError("batch_size must be an integer >= 2, got 1")

    monkeypatch.setattr("crystalrep.jobs.pretraining.start_job", refuse)
    at = _page()
    at.button(key="pretrain.start").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The job could not start: batch_size must be an integer >= 2, got 1."]


def test_a_finished_job_shows_its_loss_curve_and_becomes_an_encoder(tiny: Dataset) -> None:
    from crystalrep.cli.pretrain import run_job

    job_id = create_job({"dataset": "tiny", "task": "masking", "epochs": 2, "batch_size": 4, "threads": 1})
    run_job(jobs_home() / job_id)
    assert read_json(jobs_home() / job_id / "status.json")["state"] == "done"
    at = _page(encoders=["magpie"])
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key="pretrain.job").value == job_id
    table = at.dataframe[0].value
    assert table["state"].tolist() == ["done"] and table["epoch"].tolist() == ["2/2"]
    assert float(table["structures/s"].iloc[0].replace(",", "")) > 0 and table["heartbeat age (s)"].tolist() == ["–"]
    assert len(at.get("plotly_chart")) == 1
    hint = next(e.value for e in at.success if "Use as encoder" in e.value)
    assert f"cgcnn@{job_id}" in hint and "epoch 2" in hint
    published = read_json(jobs_home() / job_id / "status.json")["checkpoint_id"]
    assert published  # the job also published its checkpoint into the store, whose meta names the job
    options = at.multiselect(key="crystalrep.encoders").options
    assert [o for o in options if o.startswith("cgcnn@")] == [f"cgcnn@{job_id}"]  # one encoder per job
    at.button(key="pretrain.use").click().run()
    assert not at.exception
    assert at.multiselect(key="crystalrep.encoders").value == ["magpie", f"cgcnn@{job_id}"]
    assert at.button(key="pretrain.use").disabled


def test_adding_an_encoder_reruns_the_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    # The button lives in a fragment: a click reruns only the fragment, so the callback itself must ask
    # for a full-app rerun, or the sidebar keeps its old choice (seen in Chromium).
    import streamlit as st

    from ui import pretraining as pt
    from ui import state

    reruns: list[str] = []
    monkeypatch.setattr(st, "rerun", lambda scope="app": reruns.append(scope))
    monkeypatch.setattr(st, "session_state", {state.ENCODERS: ["magpie"]})
    pt.use_encoder("cgcnn@job-1")
    assert st.session_state[state.ENCODERS] == ["magpie", "cgcnn@job-1"] and reruns == ["app"]


def _dead_pid() -> int:
    """The pid of a child that has exited and been reaped: a well-formed pid with no process."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_whose_process_died_is_failed_and_resumable(tiny: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = create_job({"dataset": "tiny", "task": "denoise", "epochs": 5})
    status = read_json(jobs_home() / job_id / "status.json")
    atomic_write_json(jobs_home() / job_id / "status.json",
                      {**status, "state": "running", "pid": _dead_pid(), "heartbeat": time.time() - 3600})
    resumed: list[str] = []
    monkeypatch.setattr("crystalrep.jobs.pretraining.resume_job", lambda jid: resumed.append(jid) or {})
    at = _page()
    assert not at.exception
    assert at.dataframe[0].value["state"].tolist() == ["failed"]
    assert any(DIED in e.value for e in at.error)
    assert any("No epoch has finished yet" in e.value for e in at.info)
    at.button(key="pretrain.resume").click().run()
    assert not at.exception and resumed == [job_id]
