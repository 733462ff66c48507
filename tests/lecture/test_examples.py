"""The analogy section's tables: the headline square comes first, and every number follows the embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crystalrep.lecture import examples

FORMULAS = ["CaTiO3", "CaZrO3", "SrZrO3", "SrTiO3", "BaTiO3", "BaZrO3", "TiBaO3"]


def _quads(*rows: tuple[int, int, int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["a", "b", "c", "d"]).assign(family="perovskite")


def test_the_headline_square_comes_first() -> None:
    quads = _quads((0, 1, 2, 3),  # CaTiO3 − CaZrO3 + SrZrO3 ≈ SrTiO3: answered by SrTiO3
                   (1, 0, 3, 2),  # any other square
                   (6, 1, 2, 3),  # TiBaO3 (= BaTiO3) − CaZrO3 + SrZrO3 ≈ SrTiO3
                   (4, 5, 2, 3))  # BaTiO3 − BaZrO3 + SrZrO3 ≈ SrTiO3: the lecture's own example
    assert examples.ordered_choices(quads, FORMULAS) == [(4, 5, 2, 3), (6, 1, 2, 3), (0, 1, 2, 3), (1, 0, 3, 2)]
    assert examples.ordered_choices(quads, FORMULAS, limit=2) == [(4, 5, 2, 3), (6, 1, 2, 3)]
    assert examples.ordered_choices(quads.iloc[:2], FORMULAS) == [(0, 1, 2, 3), (1, 0, 3, 2)]  # input order kept


def test_missing_example_and_label() -> None:
    assert examples.missing_example(FORMULAS) == []
    assert examples.missing_example(["CaTiO3", "SrTiO3"]) == ["BaTiO3", "BaZrO3", "SrZrO3"]
    assert examples.analogy_label(FORMULAS, (4, 5, 2, 3)) == "BaTiO3 − BaZrO3 + SrZrO3 ≈ SrTiO3?"


def _additive() -> tuple[np.ndarray, list[str], np.ndarray]:
    """z(A, B) = u_A + v_B for A in {Ca, Sr, Ba}, B in {Ti, Zr, Hf}: every analogy is exact."""
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    names = [f"{a}{b}O3" for a in ("Ca", "Sr", "Ba") for b in ("Ti", "Zr", "Hf")]
    X = np.array([u[i] + v[j] for i in range(3) for j in range(3)])
    quads = np.array([[3 * i + j, 3 * i + k, 3 * m + k, 3 * m + j]
                      for i in range(3) for m in range(3) if m != i for j in range(3) for k in range(3) if k != j])
    return X, names, quads


def test_analogy_tables_score_an_exact_embedding_perfectly_and_noise_not() -> None:
    X, names, quads = _additive()
    noise = np.random.default_rng(1).normal(size=X.shape)
    tables = examples.analogy_tables({"additive": X, "noise": noise}, names, quads, tuple(quads[0]))
    one = tables.one.set_index("encoder")
    assert one.loc["additive", "residual"] == pytest.approx(0, abs=1e-9)
    assert one.loc["additive", "rank of the answer"] == f"1 of {len(X) - 3}"
    assert one.loc["additive", "nearest to the query"] == names[quads[0][3]]
    assert one.loc["noise", "residual"] > 0.3
    summary = tables.summary.set_index("encoder")
    assert summary.loc["additive", "analogies"] == len(quads) and summary.loc["additive", "answer ranked 1st"] == 100
    assert summary.loc["noise", "answer ranked 1st"] < 100
    walk = tables.walk
    assert list(walk.columns) == ["t", "additive", "noise"] and len(walk) == examples.WALK_STEPS
    b, d = names[quads[0][1]], names[quads[0][3]]
    assert walk["additive"].iloc[0] == f"{b} (0.00)" and walk["additive"].iloc[-1] == f"{d} (0.00)"
