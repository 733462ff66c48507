"""Cluster figure builders and tables: what is drawn is the clustering passed in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Structure

from crystalrep.analysis.clusters import Novelty, crosstab
from crystalrep.datasets import Dataset
from crystalrep.plots import clusters as plots_clusters


@pytest.fixture(scope="module")
def tiny(tiny_structures: list[Structure]) -> Dataset:
    return Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures,
                                   properties={"kind": ["a", "b", "a", "b", "a"], "same": ["x"] * 5})


def test_label_columns_are_categorical_with_two_classes(tiny: Dataset) -> None:
    names = plots_clusters.label_columns(tiny)
    assert names[:2] == ["crystal_system", "spacegroup"]
    assert "kind" in names and "same" not in names and "nsites" not in names


def test_cluster_count_curve_marks_the_chosen_size() -> None:
    sweep = pd.DataFrame({"min_cluster_size": [5, 10, 25], "n_clusters": [12, 6, 2], "noise_fraction": [0.1, 0.2, 0.4]})
    fig = plots_clusters.cluster_count_figure(sweep, chosen=15, n_clusters=4, noise=0.3)
    clusters, noise, chosen = fig.data
    assert list(clusters.x) == [5, 10, 15, 25] and list(clusters.y) == [12, 6, 4, 2]
    assert list(noise.y) == [0.1, 0.2, 0.3, 0.4]
    assert list(chosen.x) == [15] and list(chosen.y) == [4]
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [5, 10, 15, 25]
    other = plots_clusters.cluster_count_figure(sweep, chosen=10, n_clusters=6, noise=0.2)
    assert list(other.data[0].x) == [5, 10, 25] and list(other.data[2].x) == [10]


def test_silhouette_by_k_marks_the_best() -> None:
    fig = plots_clusters.silhouette_k_figure({2: 0.3, 3: 0.5, 4: 0.4}, chosen=3)
    assert list(fig.data[0].x) == [2, 3, 4] and list(fig.data[1].y) == [0.5]


def test_crosstab_heatmap_shares_counts_and_ami_in_the_title() -> None:
    pred = [0, 0, 0, 1, 1, -1]
    truth = ["a", "a", "b", "b", "b", "a"]
    fig = plots_clusters.crosstab_figure(crosstab(pred, truth), ami=0.42, label="kind")
    heat = fig.data[0]
    assert "adjusted mutual information 0.42" in fig.layout.title.text
    assert list(heat.y) == ["cluster 0", "cluster 1", "noise"]  # largest first
    assert heat.text.tolist() == [[2, 1], [0, 2], [1, 0]]
    np.testing.assert_allclose(heat.z[0], [2 / 3, 1 / 3])


def test_crosstab_sums_what_it_does_not_draw() -> None:
    rng = np.random.default_rng(0)
    pred, truth = rng.integers(0, 40, 2000), rng.integers(0, 60, 2000).astype(str)
    fig = plots_clusters.crosstab_figure(crosstab(pred, truth), ami=0.0, label="spacegroup")
    heat = fig.data[0]
    assert len(heat.y) == plots_clusters.MAX_CLUSTERS + 1 and heat.y[-1] == "other clusters"
    assert len(heat.x) == plots_clusters.MAX_LABELS + 1 and heat.x[-1] == "other"
    assert np.asarray(heat.text).sum() == 2000
    assert "10 smaller clusters summed" in fig.layout.title.text and "35 rarer labels" in fig.layout.title.text


def test_outlier_table_lists_flagged_rows_most_novel_first(tiny: Dataset) -> None:
    scores = np.array([0.1, 0.9, 0.2, 0.5, 0.3])
    novel = Novelty(scores=scores, flagged=scores >= 0.5, threshold=0.5, k=2, metric="euclidean")
    table = plots_clusters.outlier_table(tiny, novel, np.array([0, -1, 0, 1, 1]))
    assert table["id"].tolist() == ["t1", "t3"]
    assert table.columns.tolist() == ["id", "formula", "space group", "score", "cluster"]
    assert table["score"].tolist() == [0.9, 0.5] and table["cluster"].tolist() == ["noise", "1"]


def test_cluster_map_gives_each_cluster_a_colour_and_noise_grey(tiny: Dataset) -> None:
    from crystalrep.plots.projections import Highlight
    from crystalrep.plots.style import NOISE

    labels = np.array([0, 1, -1, 0, 1])
    coords = np.arange(10, dtype=float).reshape(5, 2)
    fig = plots_clusters.cluster_map_figure(coords, tiny, labels, title="t", method="umap",
                                            highlight=Highlight(focus=2))
    traces = {t.name: t for t in fig.data}
    assert list(traces)[:3] == ["noise", "cluster 0", "cluster 1"]
    assert traces["noise"].marker.color == NOISE and traces["cluster 0"].marker.color != traces["cluster 1"].marker.color
    assert [int(r[4]) for r in traces["cluster 0"].customdata] == [0, 3]
    assert list(traces["noise"].x) == [4.0] and "clicked crystal" in traces
    assert traces["cluster 1"].customdata[0][3] == "cluster 1"  # hover names the cluster


def test_silhouette_by_k_marks_a_set_k_and_the_best_apart() -> None:
    fig = plots_clusters.silhouette_k_figure({2: 0.6, 3: 0.5, 4: 0.4}, chosen=4)
    assert [t.name for t in fig.data] == ["silhouette", "chosen", "best silhouette"]
    assert list(fig.data[1].x) == [4] and list(fig.data[2].x) == [2]
    assert "k = 4 chosen; the best is k = 2" in fig.layout.title.text


def test_crosstab_numbers_are_readable() -> None:
    table = crosstab(np.array([0, 0, 1, 1]), np.array(["a", "b", "a", "a"]))
    fig = plots_clusters.crosstab_figure(table, ami=0.1, label="crystal system")
    assert fig.data[0].textfont.size >= 12 and "crystal system" in fig.layout.title.text
