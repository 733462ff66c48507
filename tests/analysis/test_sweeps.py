"""Sweeps and map scores on planted data: alignment, faithfulness numbers, caching, worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis import sweeps
from crystalrep.analysis.projections import project
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


def test_align_recovers_rotation_scale_and_shift(planted_blobs) -> None:
    Y = project(planted_blobs[0], method="pca").coords.astype(np.float64)
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = 3.0 * Y @ rot @ np.diag([1.0, -1.0]) + [5.0, -2.0]
    np.testing.assert_allclose(align(moved, Y), Y, atol=1e-3)
    assert disparity(moved, Y) < 1e-10


def test_knn_overlap_higher_for_faithful_map(planted_blobs) -> None:
    X = planted_blobs[0]
    Y = project(X, method="pca").coords
    faithful = knn_overlap(X, Y)
    shuffled = knn_overlap(X, np.random.default_rng(0).permutation(Y))
    assert 0.0 <= shuffled < 0.2 < 0.5 < faithful <= 1.0
    assert trustworthiness(X, Y) > trustworthiness(X, np.random.default_rng(0).permutation(Y))


def test_map_separation(planted_blobs) -> None:
    X, labels = planted_blobs
    Y = project(X, method="pca").coords
    assert map_separation(Y, labels) > 0.5
    assert abs(map_separation(Y, np.random.default_rng(0).integers(0, 3, len(Y)))) < 0.1
    assert np.isnan(map_separation(Y, np.zeros(len(Y))))
    named = np.array(["a", "b", "c"], dtype=object)[labels]
    named[:5] = None  # missing labels are dropped
    assert map_separation(Y, named, sample_size=200) > 0.5


def test_sweep_pca_and_tsne_on_planted_blobs(planted_blobs) -> None:
    X, _ = planted_blobs
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


def test_sweep_caches_and_validates(planted_blobs, tmp_path) -> None:
    X, _ = planted_blobs
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
def test_sweep_in_worker_processes_matches_serial(planted_blobs, tmp_path) -> None:
    X, _ = planted_blobs
    grid = {k: [v] for k, v in TSNE_FAST.items()}
    serial = sweep(X, method="tsne", grid=grid, seeds=[0, 1])
    parallel = sweep(X, method="tsne", grid=grid, seeds=[0, 1], n_jobs=2, processes=True,
                     embedding_key="e", store=Store(tmp_path))
    for key, coords in serial.coords.items():
        np.testing.assert_array_equal(coords, parallel.coords[key])
    assert len(Store(tmp_path).keys("projections")) == 2
