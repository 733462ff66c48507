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
