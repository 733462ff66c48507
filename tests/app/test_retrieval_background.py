"""The Retrieval page's precision@k table above its size threshold: `crystalrep precision` runs in the background
and the page then shows the table an in-page computation gives, read from the store."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.jobs import background
from tests.app.background_utils import REAL_START, forget, fresh_page, start_task, tasks_ended

PAGE = "views/retrieval.py"
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
    return fresh_page(PAGE, prop="density", timeout=90)


def _tables(at: AppTest) -> list[pd.DataFrame]:
    assert not at.exception, [e.message for e in at.exception]
    return [df.value for df in at.dataframe if "chemical system" in df.value.columns or "spread ratio" in df.value.columns]


@pytest.mark.slow
def test_background_precision_shows_the_in_page_table(small: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import report_cache
    from ui import retrieval as rv

    in_page = _tables(_page())  # below the threshold: computed in-page
    assert len(in_page) == 2
    forget(report_cache.KIND)
    monkeypatch.setattr(rv, "REPORT_BACKGROUND_ABOVE", 10)
    at = _page()
    assert not _tables(at)
    assert any("run in the background as `crystalrep precision`" in i.value for i in at.info)
    at = start_task(at)
    assert not at.exception and any(b.label == "Cancel" for b in at.button)
    (task,) = tasks_ended("precision")
    assert task.state == "done", task.message

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the page scored precision@k in-page although the store holds it")

    monkeypatch.setattr(report_cache, "dataset_report", refuse)
    shown = _tables(_page())  # a fresh server reads the background run's table from the store
    assert len(shown) == 2
    for mine, theirs in zip(shown, in_page, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
