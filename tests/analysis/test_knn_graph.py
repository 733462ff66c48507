"""The neighbour graph under UMAP and t-SNE: faiss's exact search equals scikit-learn's brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from crystalrep.analysis import knn_graph
from crystalrep.analysis.knn_graph import exact_knn, neighbour_method, uses_exact


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(600, 24)) * rng.uniform(0.1, 3.0, size=24)).astype(np.float32)
    X[7] = X[8]  # a duplicate pair: both at distance 0 from each other
    return X


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_exact_knn_matches_sklearn_with_self_first(rows, metric) -> None:
    idx, dist = exact_knn(rows, 10, metric=metric, n_jobs=2)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=10, algorithm="brute", metric=metric).fit(rows).kneighbors(rows)
    assert idx.shape == dist.shape == (600, 10) and dist.dtype == np.float32
    assert (idx[:, 0] == np.arange(600)).all() and (dist[:, 0] == 0).all()  # UMAP reads rho past an exact 0
    assert (np.diff(dist, axis=1) >= 0).all()
    same = np.mean([set(a) == set(b) for a, b in zip(idx, ref_idx, strict=True)])
    assert same >= 0.99  # only the duplicate pair's tie order may differ
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_knn_without_self_is_opentsnes_convention(rows, metric) -> None:
    idx, dist = exact_knn(rows, 15, metric=metric, include_self=False)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=15, algorithm="brute", metric=metric).fit(rows).kneighbors()
    assert not (idx == np.arange(600)[:, None]).any()
    assert idx[7, 0] == 8 and idx[8, 0] == 7 and dist[7, 0] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-5)
    assert np.mean(np.sort(idx, axis=1) == np.sort(ref_idx, axis=1)) > 0.99


def test_exact_knn_is_deterministic_and_checks_k(rows) -> None:
    a = exact_knn(rows, 12, n_jobs=2)
    b = exact_knn(rows, 12, n_jobs=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="600 rows"):
        exact_knn(rows, 600, include_self=False)
    with pytest.raises(ValueError, match="neighbours"):
        exact_knn(rows, 0)


def test_exact_knn_across_faiss_blocks_restores_faiss_settings(rows, monkeypatch) -> None:
    import faiss

    before = faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_database_bs
    whole = exact_knn(rows, 10)
    monkeypatch.setattr(knn_graph, "_FAISS_BLOCKS", (64, 48))  # 600 rows: many ragged tiles
    tiled = exact_knn(rows, 10)
    assert (faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_database_bs) == before
    np.testing.assert_allclose(tiled[1], whole[1], atol=1e-6)
    assert np.mean([set(a) == set(b) for a, b in zip(tiled[0], whole[0], strict=True)]) >= 0.99


def test_cosine_with_a_zero_row_falls_back_to_sklearn(rows) -> None:
    X = rows.copy()
    X[3] = 0.0
    idx, dist = exact_knn(X, 5, metric="cosine")
    assert (idx[:, 0] == np.arange(len(X))).all() and np.isfinite(dist).all()


def test_auto_switches_to_approximate_neighbours_above_the_threshold(monkeypatch) -> None:
    assert uses_exact("auto", 50_000) and not uses_exact("auto", 50_001)
    assert uses_exact("exact", 10**6) and not uses_exact("approx", 100)
    assert neighbour_method("pca", {}, 10**6) == "none"
    assert neighbour_method("umap", {"knn": "auto"}, 1000) == "exact (umap-learn pairwise)"
    assert neighbour_method("umap", {"knn": "auto"}, 50_000) == "exact (faiss)"
    assert neighbour_method("umap", {"knn": "auto"}, 200_000) == "approximate (NN-descent)"
    assert neighbour_method("umap", {"knn": "exact", "metric": "manhattan"}, 9000) == "exact (scikit-learn brute force)"
    assert neighbour_method("tsne", {"knn": "auto"}, 200_000) == "approximate (Annoy)"
    assert neighbour_method("tsne", {"knn": "approx", "metric": "correlation"}, 500) == "approximate (pynndescent)"
    monkeypatch.setattr(knn_graph, "EXACT_KNN_MAX", 100)
    assert neighbour_method("tsne", {}, 101) == "approximate (Annoy)"
