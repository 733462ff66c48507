"""The Retrieval page's precision@k table above its size threshold: `crystalrep precision` runs in the background
and the page then shows the table an in-page computation gives, read from the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.jobs import background

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/retrieval.py"
REAL_START = background.start  # tests/app/conftest.py replaces it with a recorder for every test
WAIT_S = 90.0
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="data/default is not built")


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> Any:
    """48 crystals of the default dataset; real background tasks, all stopped at the end."""
    ds = load_dataset("default").subset(range(0, 1886, 40), name="small")
    save_dataset(ds)
    monkeypatch.setattr(background, "start", REAL_START)
    yield ds
    background.stop_all()


def _page() -> AppTest:
    from ui import state

    st.cache_data.clear()  # a fresh server: nothing but the store survives
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "small"
    at.session_state[state.ENCODERS] = ["magpie"]
    at.session_state[state.PROPERTY] = "density"
    at.run()
    return at.switch_page(PAGE).run()


def _tables(at: AppTest) -> list[pd.DataFrame]:
    assert not at.exception, [e.message for e in at.exception]
    return [df.value for df in at.dataframe if "chemical system" in df.value.columns or "spread ratio" in df.value.columns]


def _finished() -> background.TaskState:
    from crystalrep.runs import tasks_home

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        keys = [p.name for p in tasks_home().glob("precision-*")]
        assert len(keys) == 1, keys
        task = background.state(keys[0])
        if not task.running:
            return task
        time.sleep(0.2)
    raise AssertionError(f"the precision task did not end within {WAIT_S} s")


def _forget_reports() -> None:
    from crystalrep.analysis.retrieval.report_cache import KIND
    from crystalrep.store import Store

    store = Store()
    for key in store.keys(KIND):
        store.delete(KIND, key)


@pytest.mark.slow
def test_background_precision_shows_the_in_page_table(small: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import report_cache
    from ui import retrieval as rv

    in_page = _tables(_page())  # below the threshold: computed in-page
    assert len(in_page) == 2
    _forget_reports()
    monkeypatch.setattr(rv, "REPORT_BACKGROUND_ABOVE", 10)
    at = _page()
    assert not _tables(at)
    assert any("run in the background as `crystalrep precision`" in i.value for i in at.info)
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("background.start."))).click().run()
    assert not at.exception and any(b.label == "Cancel" for b in at.button)
    task = _finished()
    assert task.state == "done", task.message

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the page scored precision@k in-page although the store holds it")

    monkeypatch.setattr(report_cache, "dataset_report", refuse)
    shown = _tables(_page())  # a fresh server reads the background run's table from the store
    assert len(shown) == 2
    for mine, theirs in zip(shown, in_page, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
