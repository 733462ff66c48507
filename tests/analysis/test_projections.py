"""Projections and sweeps on planted data: reproducibility, cache, faithfulness numbers."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from crystalrep.analysis import projections as proj
from crystalrep.analysis import sweeps
from crystalrep.analysis.projections import PROJECTIONS, make_spec, project, project_cached
from crystalrep.analysis.sweeps import (
    align,
    disparity,
    knn_overlap,
    map_separation,
    sweep,
    trustworthiness,
)
from crystalrep.store import Store

TSNE_FAST = {"early_exaggeration_iter": 100, "n_iter": 150, "perplexity": 20, "negative_gradient_method": "bh"}


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """3 Gaussian blobs on a 2-D plane inside 16-D (plus a little noise): 300 rows and labels."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 100)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])
    plane = np.linalg.qr(rng.normal(size=(16, 2)))[0]
    X = (centres[labels] + rng.normal(size=(300, 2))) @ plane.T + 0.05 * rng.normal(size=(300, 16))
    return X.astype(np.float32), labels


@pytest.fixture
def numba_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep UMAP's compiled numba code in pytest's cache folder, so reruns skip compilation."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache.mkdir("numba")))


@pytest.mark.parametrize(("method", "params"), [("pca", None), ("tsne", TSNE_FAST)])
def test_same_seed_gives_identical_coordinates(blobs, method, params) -> None:
    a = project(blobs[0], method=method, params=params, seed=3)
    b = project(blobs[0], method=method, params=params, seed=3)
    assert a.coords.shape == (300, 2) and a.coords.dtype == np.float32
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.seed == 3 and a.method == method and a.seconds >= 0
    assert "numpy" in a.versions and len(a.versions) >= 2


def test_tsne_different_seeds_differ(blobs) -> None:
    a = project(blobs[0], method="tsne", params=TSNE_FAST, seed=0)
    b = project(blobs[0], method="tsne", params=TSNE_FAST, seed=1)
    assert not np.allclose(a.coords, b.coords)


@pytest.mark.slow
def test_umap_same_seed_identical(blobs, numba_cache) -> None:
    a = project(blobs[0], method="umap", params={"n_neighbors": 10}, seed=0)
    b = project(blobs[0], method="umap", params={"n_neighbors": 10}, seed=0)
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
    proj._persist_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "kept")
    proj._persist_numba_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == "kept"


def test_unknown_names_raise_listing_valid_ones(blobs) -> None:
    with pytest.raises(ValueError, match="valid: pca, umap, tsne"):
        project(blobs[0], method="isomap")
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


def test_cache_hit_returns_identical_coords_without_recompute(blobs, monkeypatch, tmp_path) -> None:
    calls = []

    @functools.wraps(proj._pca)
    def counting(*args, **kwargs):
        calls.append(1)
        return proj._pca(*args, **kwargs)

    monkeypatch.setitem(PROJECTIONS, "pca", counting)
    store = Store(tmp_path)
    first = project_cached(blobs[0], "emb-1", method="pca", seed=0, store=store)
    second = project_cached(blobs[0], "emb-1", method="pca", seed=0, store=store)
    assert len(calls) == 1 and not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.coords, second.coords)
    assert second.versions == first.versions and second.params == first.params
    assert store.keys("projections") == [proj.cache_key("emb-1", make_spec("pca"))]
    project_cached(blobs[0], "emb-2", method="pca", seed=0, store=store)
    assert len(calls) == 2  # another embedding key is another artifact


def test_align_recovers_rotation_scale_and_shift(blobs) -> None:
    Y = project(blobs[0], method="pca").coords.astype(np.float64)
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = 3.0 * Y @ rot @ np.diag([1.0, -1.0]) + [5.0, -2.0]
    np.testing.assert_allclose(align(moved, Y), Y, atol=1e-3)
    assert disparity(moved, Y) < 1e-10


def test_knn_overlap_higher_for_faithful_map(blobs) -> None:
    X = blobs[0]
    Y = project(X, method="pca").coords
    faithful = knn_overlap(X, Y)
    shuffled = knn_overlap(X, np.random.default_rng(0).permutation(Y))
    assert 0.0 <= shuffled < 0.2 < 0.5 < faithful <= 1.0
    assert trustworthiness(X, Y) > trustworthiness(X, np.random.default_rng(0).permutation(Y))


def test_map_separation(blobs) -> None:
    X, labels = blobs
    Y = project(X, method="pca").coords
    assert map_separation(Y, labels) > 0.5
    assert abs(map_separation(Y, np.random.default_rng(0).integers(0, 3, len(Y)))) < 0.1
    assert np.isnan(map_separation(Y, np.zeros(len(Y))))
    named = np.array(["a", "b", "c"], dtype=object)[labels]
    named[:5] = None  # missing labels are dropped
    assert map_separation(Y, named, sample_size=200) > 0.5


def test_sweep_pca_and_tsne_on_planted_blobs(blobs) -> None:
    X, _ = blobs
    done = []
    grid = {**{k: [v] for k, v in TSNE_FAST.items()}, "perplexity": [10, 20]}
    res = sweep(X, method="tsne", grid=grid, seeds=[0, 1], progress=lambda d, t: done.append((d, t)))
    table = res.table
    assert list(table["perplexity"]) == [10.0, 20.0] and done[-1] == (4, 4)
    assert (table["trustworthiness"] > 0.9).all()
    assert np.isfinite(table["stability"]).all() and (table["stability"] >= 0).all()
    assert table["knn_overlap"].between(0, 1).all() and (table["seeds"] == 2).all()
    assert table.attrs["sample_size"] == 300 == res.sample_size and res.k == 10
    assert set(res.coords) == {(0, 0), (0, 1), (1, 0), (1, 1)} and len(res.runs) == 4
    ref = res.coords[0, 0]
    raw = project(X, method="tsne", params={**TSNE_FAST, "perplexity": 10}, seed=1).coords
    assert np.sum((res.coords[0, 1] - ref) ** 2) < np.sum((raw - ref) ** 2)
    pca = sweep(X, method="pca", grid={}, seeds=[0], trust_sample=120)
    assert pca.table["trustworthiness"].iloc[0] > 0.9 and np.isnan(pca.table["stability"].iloc[0])
    assert pca.sample_size == 120


def test_sweep_caches_and_validates(blobs, tmp_path) -> None:
    X, _ = blobs
    store = Store(tmp_path)
    first = sweep(X, method="pca", grid={}, seeds=[0, 1], embedding_key="emb", store=store)
    again = sweep(X, method="pca", grid={}, seeds=[0, 1], embedding_key="emb", store=store)
    assert first.table["cached"].iloc[0] == 0 and again.table["cached"].iloc[0] == 2
    np.testing.assert_array_equal(first.coords[0, 1], again.coords[0, 1])
    with pytest.raises(ValueError, match="distinct"):
        sweep(X, method="pca", grid={}, seeds=[0, 0])
    with pytest.raises(ValueError, match="ints"):
        sweep(X, method="pca", grid={}, seeds=[None])
    with pytest.raises(ValueError, match="non-empty"):
        sweep(X, method="umap", grid={"n_neighbors": []}, seeds=[0])
    with pytest.raises(ValueError, match="valid"):
        sweep(X, method="umap", grid={"perplexity": [5]}, seeds=[0])


def test_sweep_uses_processes_only_where_they_pay() -> None:
    assert not sweeps._use_processes("tsne", 50_000, 4, 2, None)
    assert sweeps._use_processes("umap", 20_000, 4, 2, None)
    assert not sweeps._use_processes("umap", 2_000, 4, 2, None)
    assert sweeps._use_processes("pca", 100, 4, 2, True)
    assert not sweeps._use_processes("umap", 20_000, 1, 2, True)


@pytest.mark.slow
def test_sweep_in_worker_processes_matches_serial(blobs, tmp_path) -> None:
    X, _ = blobs
    grid = {k: [v] for k, v in TSNE_FAST.items()}
    serial = sweep(X, method="tsne", grid=grid, seeds=[0, 1])
    parallel = sweep(X, method="tsne", grid=grid, seeds=[0, 1], n_jobs=2, processes=True,
                     embedding_key="e", store=Store(tmp_path))
    for key, coords in serial.coords.items():
        np.testing.assert_array_equal(coords, parallel.coords[key])
    assert len(Store(tmp_path).keys("projections")) == 2


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
