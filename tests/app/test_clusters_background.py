"""The Clusters page above its size threshold: `crystalrep cluster` runs in the background, the page shows the
same numbers as when it clusters in-page, and reads them back from the store after a restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.jobs import background
from tests.app.background_utils import REAL_START, forget, fresh_page, start_task, tasks_ended

PAGE = "views/clusters.py"
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="data/default is not built")


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> Any:
    """95 crystals of the default dataset; real background tasks, all stopped at the end."""
    ds = load_dataset("default")
    ds = ds.subset(range(0, len(ds), 20), name="small")
    save_dataset(ds)
    monkeypatch.setattr(background, "start", REAL_START)
    yield ds
    background.stop_all()


def _page(params: dict[str, str] | None = None) -> AppTest:
    return fresh_page(PAGE, params=params)


def _shown(at: AppTest) -> dict[str, Any]:
    """What the page says: metrics, chart specs and the outlier table."""
    assert not at.exception, [e.message for e in at.exception]
    return {"metrics": {m.label: m.value for m in at.metric},
            "charts": [json.loads(el.proto.spec) for el in at.get("plotly_chart")],
            "outliers": next(df.value for df in at.dataframe if "score" in df.value.columns).to_dict("list")}


@pytest.mark.slow
@pytest.mark.parametrize("params", [{}, {"method": "kmeans", "k": "4", "krange": "2-6"}], ids=["hdbscan", "kmeans"])
def test_background_clustering_shows_the_in_page_numbers(small: Dataset, monkeypatch: pytest.MonkeyPatch,
                                                         params: dict[str, str]) -> None:
    from crystalrep.analysis import cluster_cache
    from crystalrep.analysis import clusters as library
    from ui import clusters

    in_page = _shown(_page(params))  # below the threshold: clustered in-page
    forget(cluster_cache.KIND, cluster_cache.SWEEP_KIND, cluster_cache.NOVELTY_KIND)
    monkeypatch.setattr(clusters, "BACKGROUND_ABOVE", 10)
    at = _page(params)
    assert not at.exception and not at.metric
    assert any("run in the background as `crystalrep cluster`" in i.value for i in at.info)
    at = start_task(at)
    assert not at.exception
    assert any(b.label == "Cancel" for b in at.button)  # running: progress and a Cancel button
    (task,) = tasks_ended("clusters")
    assert task.state == "done", task.message

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the page clustered in-page although the store holds the result")

    for name in ("hdbscan_clusters", "kmeans_clusters", "cluster_sweep", "novelty"):
        monkeypatch.setattr(library, name, refuse)
    assert _shown(_page(params)) == in_page  # a fresh server reads the background run's result from the store


def test_below_the_threshold_nothing_runs_in_the_background(small: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.runs import tasks_home

    at = _page()
    assert not at.exception and at.metric
    assert not any(b.key and b.key.startswith("background.") for b in at.button)
    assert not list(tasks_home().glob("clusters-*"))
