"""Descriptor features are standardised before distances: fitted on the indexed set, applied to every query."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis.retrieval import KnnIndex, Standardiser, is_descriptor, precision_at_k
from crystalrep.datasets import default_dataset_dir

HAS_DEFAULT = (default_dataset_dir() / "meta.json").is_file()
PAIR = ("AlCrIr2", "AlVIr2")  # V for Cr on one Heusler site: 7e-6 apart on raw Magpie features (cosine)


def test_standardiser_zscores_with_fitted_statistics_and_drops_constant_columns() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(1000.0, 50.0, 200), rng.normal(0.0, 0.01, 200), np.full(200, 7.0)])
    scaler = Standardiser().fit(X)
    Z = scaler.transform(X)
    assert Z.shape == (200, 2) and scaler.n_dropped == 1 and list(scaler.keep_) == [True, True, False]
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-5)
    query = np.array([[1050.0, 0.01, 123.0]])  # a new row: the fitted mean and std, not its own
    np.testing.assert_allclose(scaler.transform(query), [[(1050.0 - X[:, 0].mean()) / X[:, 0].std(),
                                                          (0.01 - X[:, 1].mean()) / X[:, 1].std()]], rtol=1e-5)
    assert Standardiser().fit(np.ones((4, 3))).transform(np.ones((2, 3))).tolist() == [[0.0], [0.0]]
    with pytest.raises(ValueError, match="not fitted"):
        Standardiser().transform(X)
    with pytest.raises(ValueError, match="3 features"):
        scaler.transform(np.ones((1, 2)))


def test_a_large_valued_column_no_longer_decides_the_neighbours() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 100)
    X = np.column_stack([rng.normal(500.0, 200.0, 200),  # loud and meaningless
                         labels + rng.normal(0.0, 0.05, 200)])  # quiet and informative
    raw = precision_at_k(X, labels, k=5, metric="euclidean")
    scaled = precision_at_k(X, labels, k=5, metric="euclidean", standardise=True)
    assert raw < 0.65 and scaled > 0.95


def test_queries_get_the_indexed_sets_transform() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 4)) * [1.0, 10.0, 100.0, 1000.0]
    index = KnnIndex(metric="euclidean", standardise=True).fit(X)
    dist, idx = index.query(X[[7]], k=1)
    assert idx[0, 0] == 7 and dist[0, 0] < 1e-4
    assert index.search_info["standardised"] is True
    with pytest.raises(ValueError, match="3 dimensions, the index has 4"):
        index.query(np.ones((1, 3)))


def test_descriptors_are_the_weight_free_encoders() -> None:
    from crystalrep.encoders import get_encoder

    assert is_descriptor(get_encoder("magpie")) and is_descriptor(get_encoder("soap"))


@pytest.mark.slow
def test_learned_embeddings_are_not_descriptors() -> None:
    from crystalrep.encoders import get_encoder

    assert not is_descriptor(get_encoder("cgcnn-random"))  # hashing its weights builds the model (~5-20 s)


@pytest.mark.skipif(not HAS_DEFAULT, reason="the built-in default dataset is not built")
@pytest.mark.slow
def test_a_real_pair_magpie_could_not_tell_apart_gets_a_sensible_distance(tmp_path) -> None:
    from crystalrep.analysis.retrieval import dataset_index, neighbours_of, neighbours_of_row
    from crystalrep.datasets import load_dataset
    from crystalrep.embed import embed_dataset
    from crystalrep.store import Store

    full = load_dataset("default")
    formulas = full.table["formula"].astype(str).tolist()
    pair = [formulas.index(f) for f in PAIR]
    ds = full.subset(sorted(set(range(0, len(full), 8)) | set(pair)), name="magpie-pair")
    a, b = (ds.table["formula"].astype(str).tolist().index(f) for f in PAIR)
    store = Store(tmp_path / "store")
    X, _ = embed_dataset(ds, "magpie", store=store)

    def cosine(u: np.ndarray, v: np.ndarray) -> float:
        u, v = u.astype(np.float64), v.astype(np.float64)
        return float(1.0 - u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    assert cosine(X[a], X[b]) < 1e-5  # raw features: the largest-valued columns swamp the V/Cr difference
    index = dataset_index(ds, "magpie", metric="cosine", store=store)
    assert index.search_info["standardised"] is True
    table = neighbours_of_row(a, ds, "magpie", k=len(ds) - 1, store=store)
    d = float(table.loc[table["row"] == b, "distance"].iloc[0])
    first = np.asarray(index.query(k=1)[0][:, 0], dtype=np.float64)
    assert 0.01 < d < 1.0  # now a distance, comparable to the dataset's nearest-neighbour distances
    assert d > np.median(first[first > 0]) / 10
    Z = Standardiser().fit_transform(X)
    assert d == pytest.approx(cosine(Z[a], Z[b]), abs=1e-5)
    upload = neighbours_of(ds.structure(a), ds, "magpie", k=len(ds), store=store)  # the same transform for an upload
    assert upload.loc[0, "distance"] < 1e-5 and table.attrs["search"]["search"] == "exact"
    assert float(upload.loc[upload["row"] == b, "distance"].iloc[0]) == pytest.approx(d, abs=1e-5)


@pytest.mark.parametrize("n", [2, 7, 8, 20])
def test_block_wise_standardising_equals_the_whole_array_formula_bit_for_bit(
        n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import features

    monkeypatch.setattr(features, "_ROWS", 7)  # blocks of 7 rows: n = 8 and 20 cross block edges
    rng = np.random.default_rng(n)
    X = (rng.normal(size=(n, 12)) * rng.uniform(0.01, 1000, size=12)).astype(np.float32)
    X[:, 3] = 7.0  # a constant column, dropped
    whole = X.astype(np.float64)
    mean, std = whole.mean(axis=0), whole.std(axis=0)
    scaler = Standardiser().fit(X)
    keep = scaler.keep_
    assert not keep[3] and np.array_equal(scaler.mean_, mean[keep]) and np.array_equal(scaler.scale_, std[keep])
    expected = ((whole[:, keep] - mean[keep]) / std[keep]).astype(np.float32)
    assert np.array_equal(scaler.transform(X), expected) and np.array_equal(scaler.transform(whole), expected)
