"""The Probes page above its size threshold: `crystalrep probe --curve` runs in the background and the page then
shows the scores an in-page probe computes, read from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset
from crystalrep.jobs import background
from tests.app.background_utils import REAL_START, fresh_page, start_task, tasks_ended
from tests.conftest import with_californium

PAGE = "views/probes.py"
ENCODERS = ["magpie"]  # one encoder: the task process then needs no torch
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="data/default is not built")


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> Any:
    """80 crystals of the default dataset plus a Cf crystal; real background tasks, all stopped at the end."""
    ds = with_californium(list(range(0, len(load_dataset("default")), 24)), "small")
    monkeypatch.setattr(background, "start", REAL_START)
    yield ds
    background.stop_all()


def _page() -> AppTest:
    return fresh_page(PAGE, encoders=ENCODERS, prop="density")


def _r2(at: AppTest) -> list[str]:
    return [m.value for m in at.metric if m.label == "R²"]


@pytest.mark.slow
def test_background_probes_show_the_in_page_scores(small: Dataset, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    from crystalrep.analysis import linear_probe
    from crystalrep.analysis import probes as library
    from crystalrep.plots.probes import pm
    from crystalrep.store import Store
    from ui import probes

    expected = library.compare(small, "density", ENCODERS, split="random", store=Store(tmp_path / "elsewhere"))
    monkeypatch.setattr(probes, "BACKGROUND_ABOVE", 10)
    at = _page()
    assert not at.exception, [e.message for e in at.exception]
    assert not _r2(at) and not at.get("plotly_chart")
    assert any("run in the background as `crystalrep probe`" in i.value for i in at.info)
    at = start_task(at)
    assert not at.exception and any(b.label == "Cancel" for b in at.button)
    assert [t.state for t in tasks_ended("probes", 1)] == ["done"]

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the page probed in-page although the store holds the result")

    originals = library.probe, linear_probe.probe
    monkeypatch.setattr(library, "probe", refuse)
    monkeypatch.setattr(linear_probe, "probe", refuse)
    at = _page()  # a fresh server reads the background run's probes from the store
    assert not at.exception, [e.message for e in at.exception]
    assert _r2(at) == [pm(r, s) for r, s in zip(expected["r2_mean"], expected["r2_std"], strict=True)]
    assert len(at.get("plotly_chart")) == 1  # the learning curve, also computed by the task

    at.checkbox(key="probes.compare_splits").check().run()  # the grouped split is not stored yet: its own task
    assert not at.exception and not [df for df in at.dataframe if "R² grouped" in df.value.columns]
    monkeypatch.setattr(library, "probe", originals[0])  # for the in-test expectation below
    monkeypatch.setattr(linear_probe, "probe", originals[1])
    start_task(at)
    assert [t.state for t in tasks_ended("probes", 2)] == ["done", "done"]
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    table = next(df.value for df in at.dataframe if "R² grouped" in df.value.columns)
    grouped = library.compare(small, "density", ENCODERS, split="grouped", store=Store(tmp_path / "elsewhere"))
    assert table["R² grouped"].tolist() == [pm(r, s) for r, s in zip(grouped["r2_mean"], grouped["r2_std"],
                                                                        strict=True)]
