"""Clusterers recover planted blobs; cross-tab, AMI, sweep and novelty behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis.clusters import (
    CLUSTERERS,
    adjusted_mutual_info,
    cluster,
    cluster_sweep,
    crosstab,
    hdbscan_clusters,
    kmeans_clusters,
    novelty,
    silhouette,
)


def blobs(centres: int = 4, n_per: int = 60, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=12, size=(centres, dim))
    labels = np.repeat(np.arange(centres), n_per)
    return means[labels] + rng.normal(size=(len(labels), dim)), labels


def test_hdbscan_recovers_planted_blobs():
    X, truth = blobs()
    res = hdbscan_clusters(X, min_cluster_size=15)
    assert res.method == "hdbscan" and res.n_clusters == 4
    assert adjusted_mutual_info(res.labels, truth) > 0.9
    assert res.noise_fraction < 0.1 and res.silhouette > 0.5


@pytest.mark.parametrize("k_true", [3, 5])
def test_kmeans_picks_the_planted_k(k_true):
    X, truth = blobs(centres=k_true, n_per=40, seed=k_true)
    res = kmeans_clusters(X, k_range=range(2, 9), seed=0)
    assert res.params["k"] == k_true == res.n_clusters
    assert set(res.scores) == set(range(2, 9)) and res.silhouette == max(res.scores.values())
    assert adjusted_mutual_info(res.labels, truth) > 0.99
    summary = res.to_dict()
    assert summary["params"]["k"] == k_true and "labels" not in summary
    assert len(res.to_dict(labels=True)["labels"]) == len(truth)


def test_kmeans_uses_a_given_k_and_still_scores_the_range():
    X, truth = blobs(centres=5, n_per=40, seed=5)
    auto = kmeans_clusters(X, k_range=range(2, 9), seed=0)
    given = kmeans_clusters(X, k=3, k_range=range(2, 9), seed=0)
    assert auto.params["k_source"] == "silhouette" and given.params["k_source"] == "given"
    assert given.n_clusters == given.params["k"] == 3 and set(given.scores) == set(range(2, 9))
    assert given.silhouette == given.scores[3] < auto.silhouette
    assert set(kmeans_clusters(X, k=12, k_range=range(2, 5)).scores) == {2, 3, 4, 12}  # k outside the range
    with pytest.raises(ValueError, match="k = 1 does not fit"):
        kmeans_clusters(X, k=1)


def test_kmeans_is_seeded():
    X, _ = blobs()
    a, b = kmeans_clusters(X, k_range=range(2, 6), seed=3), kmeans_clusters(X, k_range=range(2, 6), seed=3)
    assert np.array_equal(a.labels, b.labels)


def test_name_table_and_errors():
    X, _ = blobs()
    assert set(CLUSTERERS) == {"hdbscan", "kmeans"}
    assert cluster(X, "kmeans", k_range=[4]).n_clusters == 4
    with pytest.raises(ValueError, match="hdbscan, kmeans"):
        cluster(X, "dbscan")
    with pytest.raises(ValueError, match="NaN"):
        hdbscan_clusters(np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="need 2 <= k < n"):
        kmeans_clusters(X[:3], k_range=[5])


def test_cluster_sweep_reports_count_and_noise():
    X, _ = blobs()
    sweep = cluster_sweep(X, sizes=(5, 15, 50, 1000))
    assert list(sweep["min_cluster_size"]) == [5, 15, 50]  # 1000 > n is skipped
    assert sweep.loc[sweep["min_cluster_size"] == 15, "n_clusters"].item() == 4
    assert sweep["noise_fraction"].between(0, 1).all()


def test_crosstab_and_ami_skip_missing_labels():
    pred = np.array([0, 0, 1, 1, -1, 1])
    true = np.array(["a", "a", "b", "b", None, "b"], dtype=object)
    tab = crosstab(pred, true)
    assert tab.loc[0, "a"] == 2 and tab.loc[1, "b"] == 3 and -1 not in tab.index
    assert adjusted_mutual_info(pred, true) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="reference labels"):
        crosstab(pred, true[:3])


def test_silhouette_needs_two_clusters():
    X, _ = blobs()
    assert np.isnan(silhouette(X, np.zeros(len(X), int)))
    assert np.isnan(silhouette(X, -np.ones(len(X), int)))


def test_novelty_flags_a_planted_outlier():
    X, _ = blobs()
    X = np.vstack([X, np.full((1, X.shape[1]), 200.0)])
    res = novelty(X, k=10, top=0.01)
    assert res.flagged.sum() == 3  # ceil(1 % of 241)
    assert res.flagged[-1] and res.scores[-1] == res.scores.max()
    assert res.threshold == np.sort(res.scores)[-3]
    with pytest.raises(ValueError, match="fraction"):
        novelty(X, top=0.0)
