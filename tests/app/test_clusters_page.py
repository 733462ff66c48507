"""The Clusters page under AppTest: the metrics are the library's, widgets change them, tiny data gets a sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "pages/clusters.py"
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="data/default is not built")


@pytest.fixture
def small() -> Dataset:
    ds = load_dataset("default")
    ds = ds.subset(range(0, len(ds), 20), name="small")
    save_dataset(ds)
    return ds


def _clusters(dataset: str, encoders: list[str]) -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DATASET] = dataset
    at.session_state[state.ENCODERS] = encoders
    at.run()
    return at.switch_page(PAGE).run()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at: AppTest) -> list[str]:
    return [el.proto.spec for el in at.get("plotly_chart")]


def test_hdbscan_metrics_match_the_library_and_follow_the_slider(small: Dataset) -> None:
    from crystalrep.analysis.clusters import hdbscan_clusters
    from crystalrep.embed import load_embedding

    at = _clusters("small", ["magpie"])
    assert not at.exception, [e.message for e in at.exception]
    X = load_embedding(small, "magpie")[0]
    expected = hdbscan_clusters(X, min_cluster_size=15)
    metrics = _metrics(at)
    assert metrics["Clusters"] == str(expected.n_clusters)
    assert metrics["Noise"] == f"{expected.noise_fraction:.1%}"
    assert len(_charts(at)) == 2  # cluster-count curve + cross-tab
    at.slider(key="clusters.min_cluster_size").set_value(5).run()
    assert not at.exception
    assert _metrics(at)["Clusters"] == str(hdbscan_clusters(X, min_cluster_size=5).n_clusters)


def test_label_changes_the_crosstab_and_kmeans_reports_its_k(small: Dataset) -> None:
    at = _clusters("small", ["magpie"])
    picker = at.selectbox(key="clusters.label")
    assert picker.value == "crystal_system" and "prototype" in picker.options
    before = _charts(at)[1]
    picker.select("prototype").run()
    assert _charts(at)[1] != before and "prototype" in _charts(at)[1]
    at.segmented_control(key="clusters.method").set_value("kmeans").run()
    assert not at.exception
    metrics = _metrics(at)
    assert 2 <= int(metrics["k"]) <= 12 and metrics["Noise"] == "0.0%"


def test_outlier_table_lists_the_top_percent(small: Dataset) -> None:
    from crystalrep.analysis.clusters import novelty
    from crystalrep.embed import load_embedding

    at = _clusters("small", ["cgcnn-random"])
    assert not at.exception
    table = next(df.value for df in at.dataframe if "score" in df.value.columns)
    expected = novelty(load_embedding(small, "cgcnn-random")[0], k=10)
    assert len(table) == int(expected.flagged.sum()) == int(np.ceil(0.01 * len(small)))
    assert table["id"].iloc[0] == small.table["id"].iloc[int(np.argmax(expected.scores))]
    assert list(table.columns[:4]) == ["id", "formula", "space group", "score"]


def test_five_crystals_get_one_sentence(tiny_structures: list[Structure]) -> None:
    save_dataset(Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures))
    at = _clusters("tiny", ["magpie"])
    assert not at.exception
    assert "at least 20" in at.info[0].value and not at.metric
