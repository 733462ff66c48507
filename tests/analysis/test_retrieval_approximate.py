"""Approximate search above a size threshold: a faiss IVF index whose measured recall@10 against exact is ≥ 0.99."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis.retrieval import APPROX_ENV, KnnIndex, approximate_threshold

pytest.importorskip("faiss")


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Rows around 50 centres: the shape of a real embedding (families of similar crystals)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(50, dim))
    return (centres[rng.integers(0, 50, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)]))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("data", ["clustered", "isotropic"])
def test_recall_is_measured_and_reaches_the_target(metric: str, data: str) -> None:
    rng = np.random.default_rng(3)
    X = _clustered(4000, 24, 0) if data == "clustered" else rng.normal(size=(4000, 12)).astype(np.float32)
    index = KnnIndex(metric=metric, approximate_above=2000).fit(X)
    info = index.search_info
    assert info["search"] == "approximate" and info["n_queries"] == 500
    assert info["recall_at_10"] >= 0.99 and 1 <= info["nprobe"] <= info["nlist"]
    tuned = [recall for _, recall in index.approximate_.curve]
    assert tuned[-1] >= tuned[0]
    if data == "isotropic":  # no structure to exploit: one list is not enough, the tuner must probe more
        assert info["nprobe"] > 1 and tuned[0] < 0.99
    # an independent check on crystals the index never held, against exact search
    exact = KnnIndex(metric=metric, approximate_above=10**9).fit(X)
    assert exact.approximate_ is None and exact.search_info["search"] == "exact"
    Q = X[rng.integers(0, len(X), 300)] + rng.normal(scale=0.3, size=(300, X.shape[1])).astype(np.float32)
    assert _recall(index.query(Q, k=10)[1], exact.query(Q, k=10)[1]) >= 0.98
    d, i = index.query_rows([0, 1, 2], k=10)  # a row is never its own neighbour, results nearest first
    assert all(r not in row for r, row in enumerate(i)) and np.all(np.diff(d, axis=1) >= 0)


def test_below_the_threshold_search_stays_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    X = _clustered(1500, 8, 1)
    assert KnnIndex().fit(X).approximate_ is None  # default threshold: 1,000,000 rows
    monkeypatch.setenv(APPROX_ENV, "1000")
    assert approximate_threshold() == 1000
    assert KnnIndex().fit(X).search_info["search"] == "approximate"
    assert KnnIndex(approximate_above=10).fit(X[:50]).approximate_ is None  # too few rows to be worth it
    monkeypatch.setenv(APPROX_ENV, "many")
    with pytest.raises(ValueError, match=APPROX_ENV):
        approximate_threshold()
    monkeypatch.delenv(APPROX_ENV)
    assert approximate_threshold() == 1_000_000


def test_a_query_whose_probed_lists_are_short_still_gets_k_neighbours() -> None:
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(size=(950, 4)), rng.normal(size=(50, 4)) + 50]).astype(np.float32)
    index = KnnIndex(metric="euclidean", approximate_above=100).fit(X)
    assert index.search_info["search"] == "approximate"
    dist, idx = index.query(X[-1:], k=60)  # only 50 rows lie near it: the rest come from lists probed on demand
    assert (idx >= 0).all() and np.isfinite(dist).all() and len(set(idx[0])) == 60
    assert set(range(950, 1000)) <= set(idx[0]) and np.all(np.diff(dist[0]) >= 0)
