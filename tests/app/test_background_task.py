"""ui/background_task.py: how far a task is, its progress and Cancel button, and a failure in one sentence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crystalrep.jobs import background

ROOT = Path(__file__).resolve().parents[2]
REAL_START = background.start  # tests/app/conftest.py replaces it with a recorder for every test


def _panel() -> None:
    from ui import background_task

    background_task.panel("demo-task", ["cluster", "--dataset", "missing", "--encoder", "magpie"],
                          what="Clustering 9 crystals", note="It takes minutes.", button="Cluster in the background")


def _app() -> AppTest:
    return AppTest.from_function(_panel, default_timeout=60).run()


@pytest.mark.parametrize(("line", "share"), [
    ("step 3 of 8: HDBSCAN sweep at min_cluster_size 15", 0.25),
    ("probing:  50%|█████     | 1/2 [00:03<00:03,  3.1s/it]", 0.5),
    ("probing 2 encoder(s), random split", None),
    ("", None),
])
def test_fraction_reads_steps_and_progress_bars(line: str, share: float | None) -> None:
    from ui.background_task import fraction

    assert fraction(line) == share


def test_running_task_shows_progress_and_can_be_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    states = {"demo-task": background.TaskState("running", "step 2 of 4: novelty of 9 rows", time.time() - 75, 75.0)}
    stopped: list[str] = []
    monkeypatch.setattr(background, "state", lambda key: states.get(key, background.TaskState("absent")))
    monkeypatch.setattr(background, "stop", lambda key: stopped.append(key) or True)
    at = _app()
    assert not at.exception, [e.message for e in at.exception]
    bar = at.get("progress")[0].proto
    assert bar.value == 25 and "1 min 15 s so far: step 2 of 4: novelty of 9 rows" in bar.text
    at.button(key="background.cancel.demo-task").click().run()
    assert stopped == ["demo-task"]
    states["demo-task"] = background.TaskState("failed", "the process ended without reporting a result",
                                               time.time() - 80, None)
    at.run()
    assert "Clustering 9 crystals was cancelled." in [i.value for i in at.info]
    assert not at.error and at.button(key="background.start.demo-task").label == "Cluster in the background"


@pytest.mark.slow
def test_a_failed_run_is_one_sentence_and_can_be_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "start", REAL_START)
    at = _app()
    assert [i.value for i in at.info] == ["It takes minutes."] and not at.error
    at.button(key="background.start.demo-task").click().run()  # a real `crystalrep cluster` on a missing dataset
    deadline = time.monotonic() + 60
    while background.state("demo-task").running and time.monotonic() < deadline:
        time.sleep(0.2)
    task = background.state("demo-task")
    assert task.state == "failed" and task.returncode == 2, task
    at.run()
    (error,) = at.error
    assert error.value.startswith("Clustering 9 crystals failed after ") and "crystalrep:" not in error.value
    assert "missing" in error.value, error.value
    assert at.button(key="background.start.demo-task")
