"""Exact kNN against brute force, precision@k and property spread with planted labels, uploads."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.analysis.retrieval import (
    KnnIndex,
    mean_pair_gap,
    neighbour_property_spread,
    precision_at_k,
    read_query,
    retrieval_report,
)
from crystalrep.structures import StructureError


def brute(X: np.ndarray, Q: np.ndarray, metric: str) -> np.ndarray:
    """Distance matrix in float64 numpy: 1 - cos, or euclidean."""
    if metric == "cosine":
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        return 1.0 - Qn @ Xn.T
    return np.sqrt(((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1))


@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_equals_brute_force(metric, backend):
    rng = np.random.default_rng(0)
    X, Q = rng.normal(size=(400, 16)), rng.normal(size=(30, 16))
    index = KnnIndex(metric=metric, backend=backend).fit(X)
    dist, idx = index.query(Q, k=10)
    ref = brute(X, Q, metric)
    np.testing.assert_array_equal(idx, np.argsort(ref, axis=1)[:, :10])
    np.testing.assert_allclose(dist, np.sort(ref, axis=1)[:, :10], atol=1e-4)

    self_dist, self_idx = index.query(k=5)  # the dataset against itself: each row left out
    full = brute(X, X, metric)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(self_idx, np.argsort(full, axis=1)[:, :5])
    assert self_dist.shape == (400, 5)


def test_self_query_with_duplicates_and_small_k():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    _, idx = KnnIndex(metric="euclidean").fit(X).query(k=10)
    assert idx.shape == (4, 3)  # k capped at n - 1
    assert all(i not in row for i, row in enumerate(idx))
    assert idx[0, 0] == 1 and idx[1, 0] == 0


def test_index_errors():
    with pytest.raises(ValueError, match="cosine, euclidean"):
        KnnIndex(metric="manhattan").fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="auto, faiss, sklearn"):
        KnnIndex(backend="annoy").fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        KnnIndex().query(np.ones((1, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        KnnIndex().fit(np.ones((3, 2))).query(np.ones((1, 3)))


def blobs(n_per: int = 50, centres: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10, size=(centres, dim))
    labels = np.repeat(np.arange(centres), n_per)
    return means[labels] + rng.normal(size=(len(labels), dim)), labels


def test_precision_at_k_with_planted_labels():
    X, labels = blobs()
    assert precision_at_k(X, labels, k=10) == 1.0
    shuffled = np.random.default_rng(1).permutation(labels)
    assert abs(precision_at_k(X, shuffled, k=10) - 0.25) < 0.1
    masked = labels.astype(object)
    masked[:50] = None  # unlabelled rows are not scored
    assert precision_at_k(X, masked, k=5, metric="euclidean") == 1.0


def test_retrieval_report_lists_present_label_columns():
    import pandas as pd

    X, labels = blobs()
    table = pd.DataFrame({"spacegroup": labels, "chemsys": np.zeros(len(labels), int)})
    report = retrieval_report(X, table, k=5)
    assert list(report["label"]) == ["spacegroup", "chemsys"]
    sg = report.set_index("label").loc["spacegroup"]
    assert sg["precision"] == 1.0 and abs(sg["chance"] - 49 / 199) < 1e-12
    assert report.set_index("label").loc["chemsys", "chance"] == 1.0


def test_neighbour_property_spread():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3))
    smooth = neighbour_property_spread(X, X[:, 0] + X[:, 1], k=5, metric="euclidean")
    noise = neighbour_property_spread(X, rng.normal(size=300), k=5, metric="euclidean")
    assert smooth["ratio"] < 0.3 < 0.8 < noise["ratio"] < 1.2
    y = rng.normal(size=300)
    y[:20] = np.nan
    assert np.isfinite(neighbour_property_spread(X, y, k=5)["neighbour_mad"])
    v = rng.normal(size=40)
    assert mean_pair_gap(v) == pytest.approx(np.abs(v[:, None] - v[None, :]).sum() / (40 * 39))


CIF = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif")


def test_read_query_accepts_every_upload_form(tmp_path):
    path = tmp_path / "nacl.cif"
    path.write_text(CIF)
    forms = [read_query(path), read_query(str(path)), read_query(CIF),
             read_query(CIF.encode(), filename="up.cif"),
             read_query(gzip.compress(CIF.encode()), filename="up.cif.gz")]
    assert all(s.composition.reduced_formula == "NaCl" for s in forms)
    assert read_query(forms[0]) is forms[0]


def test_read_query_errors_are_one_sentence():
    with pytest.raises(StructureError, match="up.cif"):
        read_query(b"data_x\n_cell_length_a 3\n", filename="up.cif")
    with pytest.raises(StructureError, match="gzip"):
        read_query(b"not gzip", filename="up.cif.gz")
    close = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(StructureError, match="apart"):
        read_query(close)
    with pytest.raises(ValueError, match="filename"):
        read_query(CIF.encode())


def _prototypes() -> list[Structure]:
    """Rock-salt, CsCl and perovskite cells over a few element choices (distinct compositions)."""
    out = []
    for a, b in [("Na", "Cl"), ("K", "Br"), ("Mg", "O"), ("Ca", "S")]:
        out.append(Structure(Lattice.cubic(5.0), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]))
        out.append(Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    for a, b in [("Sr", "Ti"), ("Ba", "Zr"), ("Ca", "Sn")]:
        out.append(Structure(Lattice.cubic(4.0), [a, b, "O", "O", "O"],
                             [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]))
    return out


@pytest.fixture(scope="module")
def proto_dataset():
    pytest.importorskip("crystalrep.embed", reason="crystalrep.embed (encoders engineer) is not written yet")
    from crystalrep.datasets import Dataset

    structures = _prototypes()
    return Dataset.from_structures("protos", [f"p{i}" for i in range(len(structures))], structures,
                                   properties={"volume_per_atom": [s.volume / len(s) for s in structures]})


def _rotated_supercell(structure: Structure) -> Structure:
    from scipy.spatial.transform import Rotation

    big = structure.copy()
    big.make_supercell([2, 2, 2])
    rot = Rotation.from_euler("zyx", [31, 47, 12], degrees=True).as_matrix()
    return Structure(Lattice(big.lattice.matrix @ rot.T), big.species, big.frac_coords)


@pytest.mark.slow
def test_rotated_supercell_upload_returns_its_source_first(proto_dataset, tmp_path):
    from crystalrep.analysis.retrieval import neighbours_of, neighbours_of_row
    from crystalrep.store import Store

    store = Store(tmp_path / "store")
    target = 8  # SrTiO3
    query = _rotated_supercell(proto_dataset.structure(target))
    cif = tmp_path / "query.cif"
    cif.write_text(query.to(fmt="cif"))
    for upload, name in [(cif, None), (query.to(fmt="poscar").encode(), "POSCAR")]:
        table = neighbours_of(upload, proto_dataset, "cgcnn-random", k=3, store=store, filename=name)
        assert list(table.columns[:5]) == ["rank", "id", "formula", "spacegroup", "distance"]
        assert "volume_per_atom" in table.columns and len(table) == 3
        assert table.loc[0, "id"] == proto_dataset.ids[target]
        assert table.loc[0, "distance"] < 1e-4 < table.loc[1, "distance"]
    own = neighbours_of_row(target, proto_dataset, "cgcnn-random", k=3, store=store)
    assert proto_dataset.ids[target] not in set(own["id"])
    with pytest.raises(StructureError):
        neighbours_of(b"garbage", proto_dataset, "cgcnn-random", filename="bad.cif", store=store)


def test_query_property_spread_against_the_dataset():
    import pandas as pd

    from crystalrep.analysis.retrieval import query_property_spread
    from crystalrep.datasets import Dataset

    structures = _prototypes()
    y = [float(i) for i in range(len(structures))]
    y[2] = float("nan")
    ds = Dataset.from_structures("spread", [f"p{i}" for i in range(len(structures))], structures,
                                 properties={"y": y, "family": ["a"] * len(structures)})
    spread = query_property_spread(ds, [1, 2, 3], query=0).set_index("property")
    assert list(spread.index) == ["y"]  # categorical columns are left out
    row = spread.loc["y"]
    assert row["query"] == 0.0 and row["n"] == 2 and row["neighbour_mean"] == 2.0
    assert row["neighbour_std"] == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert row["dataset_std"] == pytest.approx(pd.Series(y).std())
    assert row["std_ratio"] == pytest.approx(row["neighbour_std"] / row["dataset_std"])
    assert np.isnan(query_property_spread(ds, [1, 3]).loc[0, "query"])



def test_report_over_sampled_queries_scores_only_those_rows():
    import pandas as pd

    from crystalrep.analysis.retrieval import KnnIndex
    from crystalrep.analysis.retrieval.precision import (
        report_from_neighbours,
        spread_from_neighbours,
    )

    X, labels = blobs()
    table = pd.DataFrame({"prototype": labels.astype(str)})
    _, idx = KnnIndex(metric="euclidean").fit(X).query(k=5)
    rows = np.array([0, 7, 60, 121, 199])
    part = report_from_neighbours(idx[rows], table, queries=rows).set_index("label")
    hits = (labels[idx[rows]] == labels[rows, None]).mean()
    assert part.loc["prototype", "precision"] == pytest.approx(hits)
    whole = report_from_neighbours(idx, table).set_index("label")
    assert part.loc["prototype", "chance"] == pytest.approx(whole.loc["prototype", "chance"])  # chance: the dataset's
    y = X[:, 0].astype(np.float64)
    gaps = np.abs(y[idx[rows]] - y[rows, None]).mean()
    assert spread_from_neighbours(idx[rows], y, rows)["neighbour_mad"] == pytest.approx(gaps)
    with pytest.raises(ValueError, match="query rows"):
        report_from_neighbours(idx[rows], table)


def test_dataset_report_samples_queries_above_the_cap_and_says_so(proto_dataset, tmp_path):
    from crystalrep.analysis.retrieval import dataset_report
    from crystalrep.store import Store

    store = Store(tmp_path / "store")
    n = len(proto_dataset)
    full, _ = dataset_report(proto_dataset, "magpie", k=3, store=store, max_queries=None)
    assert full.attrs["queries"] == {"n": n, "of": n, "seed": None}
    sampled, spread = dataset_report(proto_dataset, "magpie", k=3, store=store, max_queries=4, seed=1,
                                     prop="volume_per_atom")
    assert sampled.attrs["queries"] == {"n": 4, "of": n, "seed": 1} and spread is not None
    again, _ = dataset_report(proto_dataset, "magpie", k=3, store=store, max_queries=4, seed=1)
    assert again.equals(sampled)  # seeded: the same rows every time


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_wise_normalising_equals_numpy_bit_for_bit(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import backends

    monkeypatch.setattr(backends, "_ROWS", 4)  # 11 rows: three blocks
    X = (np.random.default_rng(2).normal(size=(11, 9)) * 50).astype(dtype)
    X[5] = 0.0  # a zero row stays zero
    expected = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    got = backends.normalise(X)
    assert got.dtype == expected.dtype and np.array_equal(got, expected) and not np.shares_memory(got, X)
    own = X.copy()
    assert backends.normalise(own, inplace=True) is own and np.array_equal(own, expected)


def test_a_cold_process_loads_the_stored_index_instead_of_the_embedding(proto_dataset, tmp_path, monkeypatch):
    from crystalrep import embed
    from crystalrep.analysis.retrieval import neighbours as nb
    from crystalrep.store import Store

    store = Store(tmp_path / "store")
    nb._INDEXES.clear()  # nothing kept in memory by earlier tests
    first = nb.neighbours_of_row(3, proto_dataset, "magpie", k=4, store=store)
    assert store.keys(nb.INDEX_KIND)  # the fitted index was kept
    nb._INDEXES.clear()  # a new server process

    def no_embedding(*args, **kwargs):
        raise AssertionError("the embedding was loaded again")

    monkeypatch.setattr(embed, "embed_dataset", no_embedding)
    again = nb.neighbours_of_row(3, proto_dataset, "magpie", k=4, store=store)
    pd.testing.assert_frame_equal(first, again)
    assert again.attrs == first.attrs

    nb._INDEXES.clear()
    (key,) = store.keys(nb.INDEX_KIND)
    folder = store.path(nb.INDEX_KIND, key)
    (folder / "vectors.npy").write_bytes(b"damaged")  # fails its checksum: rebuilt from the embedding
    monkeypatch.undo()
    rebuilt = nb.neighbours_of_row(3, proto_dataset, "magpie", k=4, store=store)
    pd.testing.assert_frame_equal(first, rebuilt)
