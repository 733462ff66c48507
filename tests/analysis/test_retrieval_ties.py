"""Retrieval ties: faiss and scikit-learn return tied neighbours in the same order, by row index."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis.retrieval import TIE_RESOLUTION, KnnIndex

pytest.importorskip("faiss")


def _grid(seed: int) -> np.ndarray:
    """Integer points: many pairs at exactly equal euclidean (and cosine) distances, duplicates too."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(60, 4)).astype(np.float32)
    X[[7, 21, 33]] = X[3]  # exact duplicates of row 3
    return X


def _expected(X: np.ndarray, Q: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Brute force over every row: distance (on the index's tie grid), then row index."""
    if metric == "cosine":  # rows normalised in float32, as the index stores them
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
    A, B = X.astype(np.float64), Q.astype(np.float64)
    if metric == "cosine":
        d, unit = np.maximum(1.0 - B @ A.T, 0.0), TIE_RESOLUTION
    else:
        d = np.sqrt(((B[:, None, :] - A[None, :, :]) ** 2).sum(axis=2))
        unit = TIE_RESOLUTION * np.linalg.norm(A, axis=1).max()
    d = (np.round(d / unit) * unit).astype(np.float32)
    rows = np.broadcast_to(np.arange(len(X)), d.shape)
    return np.lexsort((rows, d), axis=1)[:, :k]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1])
def test_tied_queries_agree_across_backends_in_row_order(metric: str, seed: int) -> None:
    X = _grid(seed)
    Q = np.vstack([X[3], X[:24] + 0.5 * (np.arange(24)[:, None] % 2)]).astype(np.float32)  # 25 queries
    k = 6
    faiss_d, faiss_i = KnnIndex(metric=metric, backend="faiss").fit(X).query(Q, k=k)
    sk_d, sk_i = KnnIndex(metric=metric, backend="sklearn").fit(X).query(Q, k=k)
    np.testing.assert_array_equal(faiss_i, sk_i)
    np.testing.assert_array_equal(faiss_d, sk_d)
    np.testing.assert_array_equal(faiss_i, _expected(X, Q, k, metric))
    assert faiss_i[0, :4].tolist() == [3, 7, 21, 33]  # the four copies, by row index
    ties = (np.diff(faiss_d, axis=1) == 0)
    assert ties.any() and (np.diff(faiss_i, axis=1)[ties] > 0).all()


def test_rows_left_out_of_their_own_list_keep_the_order() -> None:
    X = _grid(0)
    for backend in ("faiss", "sklearn"):
        _, idx = KnnIndex(metric="euclidean", backend=backend).fit(X).query_rows([3, 7], k=3)
        assert idx.tolist() == [[7, 21, 33], [3, 21, 33]], backend


def test_only_queries_with_open_ties_are_searched_again_wider() -> None:
    from crystalrep.analysis.retrieval.backends import _faiss_search, tie_broken

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    X[:40] = X[0]  # one row repeated 40 times: its queries tie far past the first fetch
    calls: list[int] = []
    base = _faiss_search(X, "euclidean")

    def counted(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(Q))
        return base(Q, k)

    dist, idx = tie_broken(counted, X, "euclidean")(X, 5)
    # the 40 copies (and any row whose 5th neighbour is one of them) are searched again, the others once
    assert calls[0] == 300 and len(calls) > 1 and 40 <= calls[1] < 100
    assert all(b <= a for a, b in zip(calls[1:], calls[2:], strict=False))
    assert np.array_equal(idx, _expected(X, X, 5, "euclidean"))
    assert (idx[:40] < 40).all() and np.array_equal(idx[0], [0, 1, 2, 3, 4]) and (dist[:40] == 0).all()
