"""The lecture's library: geometry-only embedding, analogies with planted truth, interpolation, squares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset
from crystalrep.lecture import analogies as lecture
from crystalrep.lecture import runs as lecture_runs
from crystalrep.store import Store

PEROVSKITE_SITES = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def _perovskite(a: str, b: str, x: str = "O", *, order: tuple[int, ...] = (0, 1, 2, 3, 4), size: float = 3.9) -> Structure:
    species = [a, b, x, x, x]
    return Structure(Lattice.cubic(size), [species[i] for i in order], [PEROVSKITE_SITES[i] for i in order])


@pytest.fixture(scope="module")
def family() -> Dataset:
    """Perovskites A∈{Sr, Ca, Ba} × B∈{Ti, Zr} without BaZrO3, one with shuffled oxygens, plus two rock salts."""
    structures, ids, protos = [], [], []
    for a in ("Sr", "Ca", "Ba"):
        for b in ("Ti", "Zr"):
            if (a, b) == ("Ba", "Zr"):
                continue
            order = (0, 1, 4, 2, 3) if (a, b) == ("Ca", "Zr") else (0, 1, 2, 3, 4)
            structures.append(_perovskite(a, b, order=order))
            ids.append(f"p-{a}{b}O3")
            protos.append("perovskite")
    for a, b in (("Na", "Cl"), ("K", "Cl")):
        structures.append(Structure(Lattice.cubic(5.6), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]))
        ids.append(f"r-{a}{b}")
        protos.append("rocksalt")
    return Dataset.from_structures("family", ids, structures, properties={"prototype": protos})


def _linear_embedding(n_a: int = 4, n_b: int = 3, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, dict]:
    """z(A, B) = u_A + v_B exactly: every analogy is exact."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(n_a, dim)), rng.normal(size=(n_b, dim))
    rows = {(i, j): k for k, (i, j) in enumerate((i, j) for i in range(n_a) for j in range(n_b))}
    X = np.array([u[i] + v[j] for i, j in rows])
    return X, rows


def test_geometry_embedding_is_standardised_and_blind_to_elements(family: Dataset) -> None:
    G = lecture.geometry_only_embedding(family)
    assert G.shape == (len(family), 2) and G.dtype == np.float32
    np.testing.assert_allclose(G.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(G.std(0), 1, atol=1e-5)
    perovskites = np.flatnonzero(family.table["prototype"] == "perovskite")
    assert np.ptp(G[perovskites], axis=0).max() < 1e-6  # same cell, different elements: same point
    assert lecture.geometry_key(family) == lecture.geometry_key(family) and lecture.geometry_key(family).startswith("geometry-")


def test_standardize_keeps_constant_columns_finite() -> None:
    Z = lecture.standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(Z, [[-1, 0], [1, 0]])


def test_analogy_is_exact_in_a_linear_embedding() -> None:
    X, rows = _linear_embedding()
    a, b, c, d = rows[0, 1], rows[0, 2], rows[3, 2], rows[3, 1]  # z(0,1) − z(0,2) + z(3,2) = z(3,1)
    res = lecture.analogy(X, a, b, c, d)
    assert res.residual == pytest.approx(0, abs=1e-12)
    assert res.rank == 1 and res.nearest[0] == d and res.distances[0] == pytest.approx(0, abs=1e-6)
    assert res.baseline > 0.1
    assert res.n_candidates == len(X) - 3 and {a, b, c}.isdisjoint(res.nearest)


def test_analogy_rank_reports_a_wrong_answer() -> None:
    X, rows = _linear_embedding()
    wrong = rows[2, 0]
    res = lecture.analogy(X, rows[0, 1], rows[0, 2], rows[3, 2], wrong)
    assert res.rank > 1 and res.residual > 0.1


def test_analogy_by_id_and_bad_rows() -> None:
    X, rows = _linear_embedding()
    ids = [f"c{k}" for k in range(len(X))]
    res = lecture.analogy(X, *(ids[rows[k]] for k in ((0, 1), (0, 2), (3, 2), (3, 1))), ids=ids)
    assert res.rank == 1
    with pytest.raises(ValueError, match="no crystal"):
        lecture.analogy(X, "nope", 0, 1, ids=ids)
    with pytest.raises(ValueError, match="out of range"):
        lecture.analogy(X, 0, 1, len(X))
    open_ended = lecture.analogy(X, rows[0, 1], rows[0, 2], rows[3, 2], k=3)
    assert open_ended.d is None and open_ended.rank is None and open_ended.nearest[0] == rows[3, 1]


def test_batch_scores_match_single_analogies() -> None:
    X, rows = _linear_embedding(seed=3)
    X = X + np.random.default_rng(1).normal(scale=0.3, size=X.shape)  # no longer exact
    quads = np.array([[rows[0, 0], rows[0, 1], rows[1, 1], rows[1, 0]], [rows[2, 2], rows[2, 0], rows[3, 0], rows[3, 2]]])
    batch = lecture.analogy_scores(X, quads)
    for q, row in zip(quads, batch.itertuples(), strict=True):
        one = lecture.analogy(X, *q)
        assert row.residual == pytest.approx(one.residual) and row.rank == one.rank and row.nearest == one.nearest[0]
    summary = lecture.summarize_analogies(X, quads)
    assert summary["n"] == 2 and 0 <= summary["top1"] <= 1 and summary["candidates"] == len(X) - 3


def test_summary_of_exact_analogies() -> None:
    X, rows = _linear_embedding()
    quads = [[rows[i, j], rows[i, k], rows[m, k], rows[m, j]] for i in range(4) for m in range(4) if i != m
             for j in range(3) for k in range(3) if j != k]
    summary = lecture.summarize_analogies(X, np.array(quads))
    assert summary["top1"] == 1.0 and summary["median_residual"] == pytest.approx(0, abs=1e-9)
    assert summary["beats_baseline"] == 1.0
    assert lecture.summarize_analogies(X, np.zeros((0, 4), int)) == {"n": 0}


def test_interpolation_passes_through_a_planted_midpoint() -> None:
    X = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 0.1], [0.0, 9.0]])
    walk = lecture.interpolate(X, 0, 1, steps=7)
    assert list(walk["t"]) == pytest.approx(np.linspace(0, 1, 7))
    assert walk["nearest"].iloc[0] == 0 and walk["nearest"].iloc[-1] == 1 and walk["distance"].iloc[0] == 0
    assert walk["nearest"].iloc[3] == 2 and walk["distance"].iloc[3] == pytest.approx(0.1)
    assert set(walk["nearest_other"]) <= {2, 3} and walk["nearest_other"].iloc[0] == 2
    with pytest.raises(ValueError, match="at least 2 steps"):
        lecture.interpolate(X, 0, 1, steps=1)


def test_find_analogies_finds_the_complete_square_only(family: Dataset) -> None:
    quads = lecture.find_analogies(family)
    formula = family.table["formula"]
    assert set(quads["family"]) == {"perovskite"}  # two rock salts form no square; Ba lacks Zr
    assert len(quads) == 4  # one square (Sr, Ca) × (Ti, Zr), each corner once as the answer
    named = {tuple(formula.iloc[list(q)]) for q in quads[["a", "b", "c", "d"]].to_numpy()}
    assert ("CaTiO3", "CaZrO3", "SrZrO3", "SrTiO3") in named  # the lecture's form: BaTiO3 − BaX + SrX ≈ SrTiO3
    assert {q[3] for q in named} == {"SrTiO3", "SrZrO3", "CaTiO3", "CaZrO3"}
    deco = lecture.site_decorations(family).set_index("row")["elements"]
    for a, b, c, d in quads[["a", "b", "c", "d"]].to_numpy():  # site by site, a − b + c = d as element counts
        for site in range(3):
            count = pd.Series([deco[a][site], deco[c][site]]).value_counts().sub(
                pd.Series([deco[b][site]]).value_counts(), fill_value=0)
            assert count[count != 0].to_dict() == {deco[d][site]: 1}
    assert lecture.find_analogies(family, family="rocksalt").empty


def test_site_decorations_ignore_site_order(family: Dataset) -> None:
    deco = lecture.site_decorations(family)
    perov = deco[deco["family"] == "perovskite"]
    assert perov["group"].nunique() == 1  # the shuffled-oxygen CaZrO3 lands in the same group
    assert set(perov["elements"]) >= {("Sr", "Ti", "O"), ("Ca", "Zr", "O")}


def test_rows_with_formula(family: Dataset) -> None:
    assert lecture.rows_with_formula(family, "TiSrO3") == lecture.rows_with_formula(family, "SrTiO3") != []
    assert lecture.rows_with_formula(family, "BaZrO3") == []
    assert lecture.rows_with_formula(family, "NaCl", family="perovskite") == []


def test_pick_contrast_prefers_a_property_the_control_cannot_know() -> None:
    grid = pd.DataFrame([
        ("volume", "geometry", 0.9), ("volume", "good", 0.95),
        ("energy", "geometry", 0.02), ("energy", "good", 0.8), ("energy", "weak", 0.3),
        ("mass", "geometry", -0.2), ("mass", "good", 0.5),
    ], columns=["property", "embedding", "r2_mean"])
    assert lecture_runs.pick_contrast(grid, control="geometry") == ("energy", "good", True)
    assert lecture_runs.pick_contrast(grid, control="geometry", property="volume") == ("volume", "good", False)
    with pytest.raises(ValueError, match="control"):
        lecture_runs.pick_contrast(grid[grid["embedding"] == "geometry"], control="geometry")


def test_probe_grid_and_map_report_are_cached(family: Dataset) -> None:
    rng = np.random.default_rng(0)
    n = 40
    table = pd.DataFrame({"chemsys": [f"S{i % 8}" for i in range(n)]})
    X = rng.normal(size=(n, 3))
    y = X[:, 0] * 2 + rng.normal(scale=0.01, size=n)

    noise = rng.normal(size=n)

    class Fake:  # the two things probe_grid reads from a dataset
        def __init__(self) -> None:
            self.table = table.assign(target=y, noise=noise)

        def property_names(self, kind: str) -> list[str]:
            return ["target", "noise"]

    store = Store()
    first = lecture_runs.probe_grid(Fake(), {"x": (X, "key-x")}, store=store)
    assert set(first["property"]) == {"target", "noise"}
    assert first.set_index("property").loc["target", "r2_mean"] > 0.99
    assert len(store.keys(lecture_runs.PROBES_KIND)) == 2  # the Probes page's cache: one probe, one artifact
    again = lecture_runs.probe_grid(Fake(), {"x": (X, "key-x")}, store=store)
    pd.testing.assert_frame_equal(first, again)

    coords = X[:, :2]
    report = lecture_runs.map_report(X, coords, key="map-1", store=store)
    assert not report["from_cache"] and 0 <= report["trustworthiness"] <= 1
    assert lecture_runs.map_report(X, coords, key="map-1", store=store)["from_cache"]


def test_invariance_is_cached_in_the_store(family: Dataset) -> None:
    from crystalrep.encoders import get_encoder

    store = Store()
    encoder = get_encoder("magpie")
    first = lecture_runs.invariance_cached(family, encoder, n=3, seed=0, store=store)
    assert not first["from_cache"] and first["n"] == 3
    assert set(first["transforms"]) == {"rotation", "translation", "permutation", "supercell", "thermal"}
    second = lecture_runs.invariance_cached(family, encoder, n=3, seed=0, store=store)
    assert second["from_cache"] and second["transforms"] == first["transforms"]
