"""The Clusters page under AppTest: the metrics are the library's, the map is coloured by cluster, k can be
set, a link restores the view, tiny data gets a sentence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.plots.style import NOISE

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/clusters.py"
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="data/default is not built")


@pytest.fixture
def small() -> Dataset:
    ds = load_dataset("default")
    ds = ds.subset(range(0, len(ds), 20), name="small")
    save_dataset(ds)
    return ds


def _clusters(dataset: str, encoders: list[str], params: dict[str, Any] | None = None) -> AppTest:
    from ui import state

    st.cache_data.clear()  # cached arrays would outlive this test's CRYSTALREP_HOME
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DATASET] = dataset
    at.session_state[state.ENCODERS] = encoders
    at.query_params.update(params or {})
    at.run()
    return at.switch_page(PAGE).run()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _title(fig: dict[str, Any]) -> str:
    return fig["layout"].get("title", {}).get("text", "")


def test_hdbscan_metrics_match_the_library_and_the_map_is_coloured_by_cluster(small: Dataset) -> None:
    from crystalrep.analysis.clusters import hdbscan_clusters
    from crystalrep.embed import load_embedding

    at = _clusters("small", ["magpie"])
    assert not at.exception, [e.message for e in at.exception]
    X = load_embedding(small, "magpie")[0]
    expected = hdbscan_clusters(X, min_cluster_size=15)
    metrics = _metrics(at)
    assert metrics["Clusters"] == str(expected.n_clusters)
    assert metrics["Noise"] == f"{expected.noise_fraction:.1%}"
    charts = _charts(at)
    assert len(charts) == 3  # the map by cluster, the cluster-count curve, the cross-tab
    traces = {t["name"]: t for t in charts[0]["data"]}
    clusters = sorted(set(expected.labels[expected.labels >= 0]))
    assert set(traces) == {"noise", *(f"cluster {c}" for c in clusters)}
    assert traces["noise"]["marker"]["color"] == NOISE
    assert len(traces["noise"]["customdata"]) == int((expected.labels < 0).sum())
    assert "coloured by HDBSCAN cluster" in _title(charts[0])
    at.slider(key="clusters.min_cluster_size").set_value(5).run()
    assert not at.exception and at.query_params["mcs"] == "5"
    assert _metrics(at)["Clusters"] == str(hdbscan_clusters(X, min_cluster_size=5).n_clusters)


def test_label_names_and_the_crosstab_follow_the_picker(small: Dataset) -> None:
    at = _clusters("small", ["magpie"])
    picker = at.selectbox(key="clusters.label")
    assert picker.value == "crystal_system" and "prototype" in picker.options
    assert "crystal system" in _title(_charts(at)[2]) and "crystal_system" not in _title(_charts(at)[2])
    before = _charts(at)[2]
    picker.select("prototype").run()
    assert _charts(at)[2] != before and "prototype" in _title(_charts(at)[2])


def test_kmeans_k_is_chosen_by_silhouette_or_set(small: Dataset) -> None:
    from crystalrep.analysis.clusters import kmeans_clusters
    from crystalrep.embed import load_embedding

    at = _clusters("small", ["magpie"])
    at.segmented_control(key="clusters.method").set_value("kmeans").run()
    assert not at.exception
    X = load_embedding(small, "magpie")[0]
    best = kmeans_clusters(X, k_range=range(2, 13)).params["k"]
    metrics = _metrics(at)
    assert metrics["k"] == str(best) and metrics["Noise"] == "0.0%"
    assert f"k = {best}, the best" in _title(_charts(at)[1])
    other = 7 if best != 7 else 6
    at.selectbox(key="clusters.k").set_value(other).run()
    assert _metrics(at)["k"] == str(other) and at.query_params["k"] == str(other)
    assert f"k = {other} chosen; the best is k = {best}" in _title(_charts(at)[1])
    assert len({t["name"] for t in _charts(at)[0]["data"]}) == other  # the map shows that many clusters


def test_a_link_restores_method_k_label_map_and_focus(small: Dataset) -> None:
    params = {"method": "kmeans", "k": "4", "krange": "2-8", "label": "prototype", "map": "pca", "focus": small.ids[3]}
    at = _clusters("small", ["magpie"], params)
    assert not at.exception, [e.message for e in at.exception]
    assert at.segmented_control(key="clusters.method").value == "kmeans"
    assert at.selectbox(key="clusters.k").value == 4 and at.slider(key="clusters.k_range").value == (2, 8)
    assert _metrics(at)["k"] == "4" and at.selectbox(key="clusters.label").value == "prototype"
    names = {t["name"] for t in _charts(at)[0]["data"]}
    assert {"clicked crystal", "nearest neighbours"} <= names
    assert any("distance" in df.value.columns for df in at.dataframe)
    for key, value in params.items():
        assert at.query_params[key] == value, key


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


def test_above_the_threshold_the_page_says_hdbscan_ran_on_principal_components(
        small: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis import clusters
    from crystalrep.embed import load_embedding

    monkeypatch.setattr(clusters, "PCA_ABOVE", 10)  # the small set is above it
    at = _clusters("small", ["magpie"])
    assert not at.exception, [e.message for e in at.exception]
    X = load_embedding(small, "magpie")[0]
    expected = clusters.hdbscan_clusters(X, min_cluster_size=15, pca_dims=clusters.PCA_DIMS)
    assert expected.params["pca_dims"] == clusters.PCA_DIMS
    assert _metrics(at)["Clusters"] == str(expected.n_clusters)
    caption = " ".join(c.value for c in at.caption)
    assert f"found on the embedding's first {clusters.PCA_DIMS} principal components" in caption
    assert "found in every dimension" not in caption
