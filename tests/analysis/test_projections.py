"""Projections on planted data: reproducibility, parameters, cache, the neighbour search (sweeps: test_sweeps.py)."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from crystalrep.analysis import projections as proj
from crystalrep.analysis.projection_methods import persist_numba_cache
from crystalrep.analysis.projections import PROJECTIONS, make_spec, project, project_cached
from crystalrep.analysis.sweeps import trustworthiness
from crystalrep.store import Store

TSNE_FAST = {"early_exaggeration_iter": 100, "n_iter": 150, "perplexity": 20, "negative_gradient_method": "bh"}


@pytest.fixture
def numba_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep UMAP's compiled numba code in pytest's cache folder, so reruns skip compilation."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache.mkdir("numba")))


@pytest.mark.parametrize(("method", "params"), [("pca", None), ("tsne", TSNE_FAST)])
def test_same_seed_gives_identical_coordinates(planted_blobs, method, params) -> None:
    a = project(planted_blobs[0], method=method, params=params, seed=3)
    b = project(planted_blobs[0], method=method, params=params, seed=3)
    assert a.coords.shape == (300, 2) and a.coords.dtype == np.float32
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.seed == 3 and a.method == method and a.seconds >= 0
    assert "numpy" in a.versions and len(a.versions) >= 2


def test_tsne_different_seeds_differ(planted_blobs) -> None:
    a = project(planted_blobs[0], method="tsne", params=TSNE_FAST, seed=0)
    b = project(planted_blobs[0], method="tsne", params=TSNE_FAST, seed=1)
    assert not np.allclose(a.coords, b.coords)


@pytest.mark.slow
def test_umap_same_seed_identical(planted_blobs, numba_cache) -> None:
    a = project(planted_blobs[0], method="umap", params={"n_neighbors": 10}, seed=0)
    b = project(planted_blobs[0], method="umap", params={"n_neighbors": 10}, seed=0)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.params == {"n_neighbors": 10, "min_dist": 0.1, "metric": "euclidean", "knn": "auto"}
    assert "umap-learn" in a.versions


@pytest.mark.slow
def test_umap_exact_knn_above_umaps_own_threshold(numba_cache) -> None:
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(4200, 2)) @ rng.normal(size=(2, 8)) + 0.01 * rng.normal(size=(4200, 8))).astype(np.float32)
    p = project(X, method="umap", params={"knn": "exact"}, seed=0, n_jobs=2)
    rows = np.random.default_rng(0).choice(len(X), 1000, replace=False)
    assert np.isfinite(p.coords).all() and trustworthiness(X[rows], p.coords[rows]) > 0.9


def test_numba_cache_dir_defaults_to_store(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CRYSTALREP_HOME", str(tmp_path))
    monkeypatch.setenv("NUMBA_CACHE_DIR", "placeholder")
    monkeypatch.delenv("NUMBA_CACHE_DIR")  # removed now, restored after the test
    persist_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "kept")
    persist_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == "kept"


def test_unknown_names_raise_listing_valid_ones(planted_blobs) -> None:
    with pytest.raises(ValueError, match="valid: pca, umap, tsne"):
        project(planted_blobs[0], method="isomap")
    with pytest.raises(ValueError, match="valid: n_neighbors, min_dist, metric, knn"):
        make_spec("umap", {"perplexity": 30})
    with pytest.raises(ValueError, match="valid: standardize"):
        make_spec("pca", {"whiten": True})
    with pytest.raises(ValueError, match="must be int"):
        make_spec("umap", {"n_neighbors": 1.5})
    with pytest.raises(ValueError, match="one of auto, fft, bh"):
        make_spec("tsne", {"negative_gradient_method": "exact"})
    with pytest.raises(ValueError, match="one of auto, exact, approx"):
        make_spec("umap", {"knn": "brute"})
    with pytest.raises(ValueError, match="seed"):
        make_spec("pca", None, seed=1.0)
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((5, 3), np.nan), method="pca")


def test_spec_is_complete_and_canonical() -> None:
    spec = make_spec("tsne", {"perplexity": "30", "n_iter": 500.0})
    assert spec == make_spec("tsne", None)
    assert dict(spec.params)["perplexity"] == 30.0 and isinstance(dict(spec.params)["n_iter"], int)
    assert [k for k, _ in spec.params] == sorted(k for k, _ in spec.params)
    assert make_spec("pca", seed=None).seed is None


def test_cache_hit_returns_identical_coords_without_recompute(planted_blobs, monkeypatch, tmp_path) -> None:
    calls = []
    pca = PROJECTIONS["pca"]

    @functools.wraps(pca)
    def counting(*args, **kwargs):
        calls.append(1)
        return pca(*args, **kwargs)

    monkeypatch.setitem(PROJECTIONS, "pca", counting)
    store = Store(tmp_path)
    first = project_cached(planted_blobs[0], "emb-1", method="pca", seed=0, store=store)
    second = project_cached(planted_blobs[0], "emb-1", method="pca", seed=0, store=store)
    assert len(calls) == 1 and not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.coords, second.coords)
    assert second.versions == first.versions and second.params == first.params
    assert store.keys("projections") == [proj.cache_key("emb-1", make_spec("pca"))]
    project_cached(planted_blobs[0], "emb-2", method="pca", seed=0, store=store)
    assert len(calls) == 2  # another embedding key is another artifact


def test_pca_standardises_by_default_and_the_scaling_is_part_of_the_key() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=200) * 1000.0, rng.normal(size=200), rng.normal(size=200)])
    X[:100, 1:] += 4.0  # two groups, visible only in the small-unit columns
    scaled = project(X, method="pca").coords
    raw = project(X, method="pca", params={"standardize": False}).coords
    # raw PCA's first axis is the large-unit column; the standardised one finds the groups
    assert abs(np.corrcoef(raw[:, 0], X[:, 0])[0, 1]) > 0.99
    groups = np.r_[np.ones(100), np.zeros(100)]
    assert abs(np.corrcoef(scaled[:, 0], groups)[0, 1]) > 0.9
    assert make_spec("pca") == make_spec("pca", {"standardize": "true"})
    assert dict(make_spec("pca", {"standardize": "false"}).params) == {"standardize": False}
    assert proj.cache_key("e", make_spec("pca")) != proj.cache_key("e", make_spec("pca", {"standardize": False}))
    with pytest.raises(ValueError, match="true or false"):
        make_spec("pca", {"standardize": "maybe"})


def test_the_neighbour_search_is_recorded_and_survives_the_cache(planted_blobs, tmp_path) -> None:
    store = Store(tmp_path)
    first = project_cached(planted_blobs[0], "emb", method="tsne", params=TSNE_FAST, seed=0, store=store)
    assert first.neighbors == "exact (faiss)" and first.meta()["neighbors"] == "exact (faiss)"
    again = project_cached(planted_blobs[0], "emb", method="tsne", params=TSNE_FAST, seed=0, store=store)
    assert again.from_cache and again.neighbors == "exact (faiss)"
    assert project(planted_blobs[0], method="pca").neighbors == "none"
    # a map stored before the field existed: derived from its spec, the coordinates still served
    key = proj.cache_key("old", make_spec("pca"))
    store.save_array("projections", key, np.zeros((300, 2), np.float32), {"method": "pca", "seconds": 1.0})
    old = project_cached(planted_blobs[0], "old", method="pca", store=store)
    assert old.from_cache and old.neighbors == "none" and not old.coords.any()


def test_a_cached_map_of_the_wrong_shape_is_recomputed_and_replaced(planted_blobs, tmp_path) -> None:
    store = Store(tmp_path)
    key = proj.cache_key("emb", make_spec("pca"))
    store.save_array("projections", key, np.zeros((5, 2), np.float32), {})
    fresh = project_cached(planted_blobs[0], "emb", method="pca", store=store)
    assert not fresh.from_cache and fresh.coords.shape == (300, 2)
    assert store.load_array("projections", key)[0].shape == (300, 2)


def test_tsne_switches_to_approximate_neighbours_above_the_threshold(planted_blobs, monkeypatch) -> None:
    from crystalrep.analysis import knn_graph

    exact = project(planted_blobs[0], method="tsne", params=TSNE_FAST, seed=0)
    monkeypatch.setattr(knn_graph, "EXACT_KNN_MAX", 200)  # the 300 blob rows are now "large"
    a = project(planted_blobs[0], method="tsne", params=TSNE_FAST, seed=0)
    b = project(planted_blobs[0], method="tsne", params=TSNE_FAST, seed=0)
    assert a.neighbors == "approximate (Annoy)" and exact.neighbors == "exact (faiss)"
    np.testing.assert_array_equal(a.coords, b.coords)  # Annoy is seeded: still reproducible
    assert trustworthiness(planted_blobs[0], a.coords) > 0.9 and trustworthiness(planted_blobs[0], exact.coords) > 0.9


@pytest.mark.slow
def test_umap_records_faiss_neighbours_and_stays_reproducible(numba_cache) -> None:
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(4200, 2)) @ rng.normal(size=(2, 8)) + 0.01 * rng.normal(size=(4200, 8))).astype(np.float32)
    a = project(X, method="umap", seed=0, n_jobs=2)
    b = project(X, method="umap", seed=0, n_jobs=1)  # faiss's thread count does not change the graph
    assert a.neighbors == "exact (faiss)"
    np.testing.assert_array_equal(a.coords, b.coords)
