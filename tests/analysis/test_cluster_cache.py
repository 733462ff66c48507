"""crystalrep.analysis.cluster_cache: stored clusters, sweep and novelty equal fresh ones; keys follow the inputs."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis import cluster_cache, clusters
from crystalrep.store import Store


@pytest.fixture
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(c, 0.3, size=(25, 4)) for c in (0.0, 3.0, 6.0)])


def test_keys_change_with_what_the_method_reads_only() -> None:
    key = cluster_cache.clusters_key
    assert key("e", method="hdbscan", k=3) == key("e", method="hdbscan", k=5)  # k-means' k: not HDBSCAN's input
    assert key("e", method="hdbscan") != key("e", method="hdbscan", min_cluster_size=5)
    assert key("e", method="kmeans", k_range=[4, 2, 3]) == key("e", method="kmeans", k_range=range(2, 5))
    assert key("e", method="kmeans", k=3) != key("e", method="kmeans")
    assert key("e", method="kmeans") != key("f", method="kmeans")
    with pytest.raises(ValueError, match="unknown clusterer"):
        key("e", method="dbscan")


def test_stored_clusters_equal_fresh_ones(X: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    first, hit = cluster_cache.clusters_cached(X, "e", method="kmeans", k_range=range(2, 5))
    assert not hit
    monkeypatch.setattr(clusters, "kmeans_clusters", lambda *a, **k: pytest.fail("recomputed"))
    again, hit = cluster_cache.clusters_cached(X, "e", method="kmeans", k_range=range(2, 5))
    assert hit and again.params == first.params and again.scores == first.scores
    assert np.array_equal(again.labels, first.labels) and again.labels.dtype == np.int64
    assert (again.n_clusters, again.noise_fraction, again.silhouette) == (3, 0.0, first.silhouette)


def test_a_damaged_artifact_is_recomputed(X: np.ndarray) -> None:
    store = Store()
    nov, hit = cluster_cache.novelty_cached(X, "e", store=store)
    assert not hit and nov.flagged.sum() == 1
    folder = store.path(cluster_cache.NOVELTY_KIND, cluster_cache.novelty_key("e"))
    (folder / "array.npy").write_bytes(b"garbage")
    again, hit = cluster_cache.novelty_cached(X, "e", store=store)
    assert not hit and np.array_equal(again.scores, nov.scores) and np.array_equal(again.flagged, nov.flagged)


def test_sweep_is_stored_size_by_size(X: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    partial = cluster_cache.sweep_cached(X, "e", [5, 10])
    assert cluster_cache.is_stored(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key("e", 10))
    full = cluster_cache.sweep_cached(X, "e", [5, 10, 500], progress=lambda d, n: calls.append((d, n)))
    assert full.to_dict("records") == clusters.cluster_sweep(X, [5, 10, 500]).to_dict("records")
    assert full.iloc[:2].equals(partial) and calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_sweep_sizes_run_in_worker_processes_with_the_labels_they_give_alone(X: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    store = Store()
    parallel = cluster_cache.sweep_cached(X, "e", [10, 5, 500, 20], n_jobs=2, store=store,
                                          progress=lambda d, n: calls.append((d, n)))
    assert parallel.to_dict("records") == clusters.cluster_sweep(X, [10, 5, 500, 20]).to_dict("records")
    assert [d for d, _ in calls] == [0, 1, 2, 3, 4] and {n for _, n in calls} == {4}  # 500 > n: no row, still counted
    assert all(cluster_cache.is_stored(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key("e", s)) for s in (5, 10, 20))


def test_workers_cluster_a_space_big_enough_to_reach_them_as_a_read_only_memory_map() -> None:
    rng = np.random.default_rng(3)
    big = np.vstack([rng.normal(c, 0.3, size=(3_000, 16)) for c in (0.0, 3.0, 6.0)])  # 1.2 MB > joblib's 1 MB
    sweep = cluster_cache.sweep_cached(big, "big", [50, 400], n_jobs=2, pca_dims=0)
    assert sweep.to_dict("records") == clusters.cluster_sweep(big, [50, 400]).to_dict("records")


def test_a_size_already_clustered_is_stored_from_that_result_not_run_again(
        X: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []
    real = cluster_cache._sweep_rows

    def counted(space: np.ndarray, size: int, min_samples: int | None) -> tuple[int, list]:
        ran.append(size)
        return real(space, size, min_samples)

    monkeypatch.setattr(cluster_cache, "_sweep_rows", counted)
    result, _ = cluster_cache.clusters_cached(X, "e", method="hdbscan", min_cluster_size=10)
    sweep = cluster_cache.sweep_cached(X, "e", [5, 10], known={10: result}, n_jobs=1)
    assert ran == [5]
    assert sweep.to_dict("records") == clusters.cluster_sweep(X, [5, 10]).to_dict("records")
    assert cluster_cache.is_stored(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key("e", 10))


@pytest.fixture
def wide() -> np.ndarray:
    """Three groups in 16 dimensions, separated in a few of them (the rest is noise)."""
    rng = np.random.default_rng(1)
    centres = np.zeros((3, 16))
    centres[1, :3], centres[2, 3:6] = 6.0, 6.0
    return np.vstack([rng.normal(c, 0.4, size=(40, 16)) for c in centres])


def test_above_the_row_threshold_hdbscan_clusters_principal_components_under_their_own_keys(
        wide: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.decomposition import PCA

    key = cluster_cache.clusters_key
    # full-embedding keys are the keys stored before principal components existed
    assert key("e", method="hdbscan", pca_dims=None) == key("e", method="hdbscan")
    assert key("e", method="hdbscan", pca_dims=4) != key("e", method="hdbscan")
    assert key("e", method="kmeans", pca_dims=4) == key("e", method="kmeans")  # k-means ignores it
    assert cluster_cache.sweep_key("e", 5, pca_dims=4) != cluster_cache.sweep_key("e", 5)

    small, _ = cluster_cache.clusters_cached(wide, "e", method="hdbscan", min_cluster_size=10)
    assert "pca_dims" not in small.params  # 120 rows: the embedding itself
    monkeypatch.setattr(clusters, "PCA_ABOVE", 100)
    monkeypatch.setattr(clusters, "PCA_DIMS", 4)
    big, hit = cluster_cache.clusters_cached(wide, "e", method="hdbscan", min_cluster_size=10)
    assert not hit and big.params["pca_dims"] == 4
    assert cluster_cache.is_stored(cluster_cache.KIND, key("e", method="hdbscan", min_cluster_size=10, pca_dims=4))
    import hdbscan

    reduced = PCA(n_components=4).fit_transform(wide)
    expected = hdbscan.HDBSCAN(min_cluster_size=10).fit_predict(reduced)
    assert np.array_equal(big.labels, expected) and big.n_clusters == 3
    assert big.silhouette == clusters.silhouette(wide, big.labels)  # measured in the embedding, not the components
    sweep = cluster_cache.sweep_cached(wide, "e", [10, 20])
    assert sweep.to_dict("records") == clusters.cluster_sweep(reduced, [10, 20]).to_dict("records")
    assert all(cluster_cache.is_stored(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key("e", s, pca_dims=4))
               for s in (10, 20))
    full, _ = cluster_cache.clusters_cached(wide, "e", method="hdbscan", min_cluster_size=10, pca_dims=0)
    assert "pca_dims" not in full.params and np.array_equal(full.labels, small.labels)


def test_principal_components_are_only_taken_when_fewer_than_the_columns(wide: np.ndarray) -> None:
    assert clusters.hdbscan_space(wide, 16) is not None and clusters.hdbscan_space(wide, 16).shape == (120, 16)
    assert clusters.hdbscan_space(wide, 3).shape == (120, 3)
    assert "pca_dims" not in clusters.hdbscan_clusters(wide, min_cluster_size=10, pca_dims=32).params
    with pytest.raises(ValueError, match="positive number of components"):
        clusters.hdbscan_space(wide, -1)
    assert clusters.hdbscan_pca_dims(clusters.PCA_ABOVE) is None
    assert clusters.hdbscan_pca_dims(clusters.PCA_ABOVE + 1) == clusters.PCA_DIMS


def test_agreement_is_stored_under_both_labellings(X: np.ndarray) -> None:
    import pandas as pd

    labels = clusters.hdbscan_clusters(X, min_cluster_size=10).labels
    truth = pd.Series(np.where(np.arange(len(X)) % 3 == 0, "a", "b"))
    truth[4] = None  # a missing label is left out, as adjusted_mutual_info does
    ami, hit = cluster_cache.ami_cached(labels, truth)
    assert not hit and ami == clusters.adjusted_mutual_info(labels, truth)
    again, hit = cluster_cache.ami_cached(labels, truth)
    assert hit and again == ami
    other = truth.where(np.arange(len(X)) != 7, "c")
    assert cluster_cache.agreement_key(labels, other) != cluster_cache.agreement_key(labels, truth)
    assert cluster_cache.agreement_key(labels[::-1], truth) != cluster_cache.agreement_key(labels, truth)
