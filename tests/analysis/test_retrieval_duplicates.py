"""Identical rows are indexed once: every answer equals the row-by-row tie-broken search."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis.retrieval import KnnIndex
from crystalrep.analysis.retrieval.backends import BACKENDS, tie_broken
from crystalrep.analysis.retrieval.duplicates import row_groups

pytest.importorskip("faiss")


def _repeated(seed: int, n: int = 400, distinct: int = 37) -> np.ndarray:
    """Few distinct vectors, repeated unevenly (one of them 120 times), on an integer grid so distinct ones tie too."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-2, 3, size=(distinct, 5)).astype(np.float32)
    pick = np.concatenate([np.zeros(120, dtype=int), rng.integers(0, distinct, size=n - 120)])
    return base[rng.permutation(pick)]


def _row_by_row(X: np.ndarray, metric: str, backend: str, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The search without grouping: every row indexed, the tie-broken wrapper over all of them."""
    index = KnnIndex(metric=metric, backend=backend).fit(X[:1])  # only for its _prepare
    index.standardiser_ = None
    data, queries = index._prepare(X), index._prepare(Q)
    return tie_broken(BACKENDS[backend](data, metric), data, metric)(queries, k)


def test_row_groups_keep_row_order_and_cover_every_row() -> None:
    X = np.array([[1, 0], [2, 0], [1, 0], [3, 0], [2, 0], [1, 0]], dtype=np.float32)
    g = row_groups(X)
    assert g is not None
    assert g.first.tolist() == [0, 1, 3] and g.group.tolist() == [0, 1, 0, 2, 1, 0]
    assert g.sizes.tolist() == [3, 2, 1] and g.members.tolist() == [0, 2, 5, 1, 4, 3]
    assert row_groups(np.eye(4, dtype=np.float32)) is None  # nothing repeated: no grouping


def _by_sorting(X: np.ndarray) -> list[list[int]]:
    """Groups of identical rows (as bytes) found the slow, obvious way: rows sorted by their bytes."""
    groups: dict[bytes, list[int]] = {}
    for i, row in enumerate(np.ascontiguousarray(X)):
        groups.setdefault(row.tobytes(), []).append(i)
    return sorted(groups.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_hashed_grouping_equals_grouping_by_bytes(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import duplicates

    monkeypatch.setattr(duplicates, "_BLOCK_ROWS", 64)  # several blocks
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 3)).astype(dtype)[rng.integers(0, 60, size=500)]  # float16 x 3: 6-byte rows, padded
    X[:5] = -0.0
    X[5:9] = 0.0  # equal as numbers, different as bytes: kept apart
    got = row_groups(X)
    assert got is not None
    found = sorted(got.members[a:b].tolist() for a, b in zip(got.offsets[:-1], got.offsets[1:], strict=True))
    assert found == _by_sorting(X)
    assert got.first.tolist() == sorted(got.first.tolist()) and (got.group[got.first] == np.arange(len(got.first))).all()


def test_a_hash_collision_falls_back_to_exact_grouping(monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import duplicates

    monkeypatch.setattr(duplicates, "_row_hashes", lambda words: np.zeros(len(words), dtype=np.uint64))
    X = _repeated(4)
    got = row_groups(X)
    assert got is not None
    found = sorted(got.members[a:b].tolist() for a, b in zip(got.offsets[:-1], got.offsets[1:], strict=True))
    assert found == _by_sorting(X)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_search_equals_row_by_row_search(metric: str, backend: str, seed: int) -> None:
    X = _repeated(seed)
    index = KnnIndex(metric=metric, backend=backend).fit(X)
    assert index.groups_ is not None and len(index.groups_.first) <= 37
    Q = np.vstack([X[:30], X[:30] + 0.5]).astype(np.float32)
    for k in (1, 10, 150):  # 150: past the 120 copies of one vector
        got = index.query(Q, k=k)
        want = _row_by_row(X, metric, backend, Q, k)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rows_left_out_of_their_own_list_match_row_by_row_search(metric: str) -> None:
    X = _repeated(2)
    index = KnnIndex(metric=metric, backend="faiss").fit(X)
    k = 10
    dist, idx = index.query(k=k)
    d_all, i_all = _row_by_row(X, metric, "faiss", X, k + 1)
    is_self = i_all == np.arange(len(X))[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(i_all, dtype=bool)
    keep[np.arange(len(X)), drop] = False
    np.testing.assert_array_equal(idx, i_all[keep].reshape(len(X), k))
    np.testing.assert_array_equal(dist, d_all[keep].reshape(len(X), k))
    assert not (idx == np.arange(len(X))[:, None]).any()
    # a copy of the 120-fold vector: its 10 nearest are 10 other copies, the lowest rows first
    copies = np.flatnonzero((X == X[index.groups_.first[index.groups_.group[0]]]).all(axis=1))
    row = copies[3]
    assert idx[row].tolist() == [c for c in copies if c != row][:k] and (dist[row] == 0).all()


def test_each_distinct_vector_is_searched_once() -> None:
    X = _repeated(3)
    index = KnnIndex(metric="euclidean", backend="faiss").fit(X)
    searched: list[int] = []
    inner = index._search

    def counted(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        searched.append(len(Q))
        return inner(Q, k)

    index._search = counted
    ticks: list[tuple[int, int]] = []
    index.query_rows(np.arange(len(X)), k=5, chunk=16, progress=lambda d, t: ticks.append((d, t)))
    assert sum(searched) == len(index.groups_.first)
    assert ticks[-1] == (len(X), len(X)) and all(b[0] >= a[0] for a, b in zip(ticks, ticks[1:], strict=False))


def test_standardised_descriptors_with_copies_match() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=(25, 6)).astype(np.float32) * np.array([1, 10, 100, 1e3, 1, 0.1], dtype=np.float32)
    X = base[rng.integers(0, 25, size=300)]
    grouped = KnnIndex(metric="euclidean", standardise=True).fit(X)
    assert grouped.groups_ is not None
    distinct_rows = KnnIndex(metric="euclidean", standardise=True).fit(X + rng.normal(size=X.shape).astype(np.float32) * 1e-3)
    assert distinct_rows.groups_ is None
    d, i = grouped.query(k=8)
    data = grouped._prepare(X)  # standardised with the indexed rows' statistics
    d_all, i_all = tie_broken(BACKENDS["faiss"](data, "euclidean"), data, "euclidean")(data, 9)
    assert (i_all[:, :1] != np.arange(len(X))[:, None]).any()  # copies outrank the row itself by row index
    assert (d[:, 0] == 0).sum() > 250  # most rows have a copy at distance 0
    assert not (i == np.arange(len(X))[:, None]).any()
    np.testing.assert_array_equal(d, np.sort(d, axis=1))
    for row in range(0, len(X), 7):
        want = [j for j in i_all[row] if j != row][:8]
        assert i[row].tolist() == want


def test_approximate_index_over_copies_measures_recall_on_rows() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(size=(600, 8)).astype(np.float32)
    X = base[rng.integers(0, 600, size=3000)]
    index = KnnIndex(metric="euclidean", approximate_above=1000).fit(X)
    assert index.groups_ is not None and index.approximate_ is not None
    assert index.approximate_.recall_at_10 >= 0.99
    exact = KnnIndex(metric="euclidean", approximate_above=10**9).fit(X)
    d_a, _ = index.query_rows(np.arange(200), k=10)
    d_e, _ = exact.query_rows(np.arange(200), k=10)
    assert np.mean(d_a <= d_e[:, -1:] + 1e-6) >= 0.99


def test_each_row_knows_its_copies_and_the_index_its_distinct_vectors() -> None:
    X = np.array([[1, 0], [2, 0], [1, 0], [3, 0], [1, 0]], dtype=np.float32)
    index = KnnIndex(metric="euclidean").fit(X)
    assert [index.copies(r) for r in range(5)] == [2, 0, 2, 0, 2]
    assert index.search_info["distinct_vectors"] == 3 and index.search_info["rows"] == 5
    plain = KnnIndex(metric="euclidean").fit(np.eye(3, dtype=np.float32))
    assert plain.copies(1) == 0 and plain.search_info["distinct_vectors"] == 3
    with pytest.raises(ValueError, match="outside the index"):
        index.copies(5)



@pytest.mark.parametrize(("metric", "standardise"), [("cosine", True), ("euclidean", False)])
def test_a_stored_index_state_answers_as_the_fitted_index(metric: str, standardise: bool) -> None:
    X = _repeated(5) * np.float32(3.0) + np.float32(1.0)
    fitted = KnnIndex(metric=metric, standardise=standardise).fit(X)
    state = fitted.state()
    assert state is not None
    arrays, meta = state
    import json

    again = KnnIndex.from_state(arrays, json.loads(json.dumps(meta)))  # meta as the store keeps it
    for a, b in zip(fitted.query(k=12), again.query(k=12), strict=True):
        np.testing.assert_array_equal(a, b)
    Q = X[:7] + np.float32(0.25)
    for a, b in zip(fitted.query(Q, k=5), again.query(Q, k=5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.search_info == fitted.search_info and again.copies(3) == fitted.copies(3)
    with pytest.raises(ValueError, match="this version"):
        KnnIndex.from_state(arrays, {**meta, "version": -1})
    with pytest.raises(ValueError, match="disagree"):
        KnnIndex.from_state({**arrays, "vectors": arrays["vectors"][:-1]}, meta)


def test_an_approximate_index_has_no_state_to_store() -> None:
    X = np.random.default_rng(6).normal(size=(400, 8)).astype(np.float32)
    assert KnnIndex(approximate_above=200).fit(X).state() is None


def test_garbage_index_states_are_refused_in_one_sentence() -> None:
    X = _repeated(8)
    arrays, meta = KnnIndex(metric="cosine", standardise=True).fit(X).state()  # type: ignore[misc]
    rng = np.random.default_rng(9)
    junk = [None, -1, 2**70, "x" * 1000, [], {}, [1.0] * 3, {"mean": []}, float("nan"), True]
    bad_metas = [[], "meta", {}, {**meta, "metric": "manhattan"}, {**meta, "backend": "annoy"},
                 {**meta, "dim": 3}, {**meta, "rows": 10**12}, {**meta, "standardiser": {"keep": [True]}}]
    bad_metas += [{**meta, key: junk[rng.integers(len(junk))]} for key in meta for _ in range(3)]
    bad_arrays = [{}, {"vectors": arrays["vectors"][:, :2]}, {**arrays, "groups": arrays["groups"][::-1]},
                  {**arrays, "groups": -arrays["groups"]}, {**arrays, "vectors": arrays["vectors"].ravel()}]
    outcomes = []
    for m in bad_metas:
        outcomes.append(_refused_or_working(arrays, m))
    for a in bad_arrays:
        outcomes.append(_refused_or_working(a, meta))
    assert outcomes.count("refused") >= len(bad_arrays) + 8


def _refused_or_working(arrays: dict, meta: object) -> str:
    try:
        index = KnnIndex.from_state(arrays, meta)  # type: ignore[arg-type]
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).endswith(".")
        return "refused"
    index.query_rows([0, 1], k=3)  # an accepted state must still search
    return "working"
