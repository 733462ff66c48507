"""The drawn sample of a big map: its size, its seed, the rows it always keeps and its strata."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.plots import sampling


def test_small_sets_are_drawn_whole() -> None:
    assert sampling.sample_rows(50, 100).tolist() == list(range(50))
    drawn = sampling.Drawn(np.arange(50), 50)
    assert not drawn.sampled and drawn.label() == "all 50 points drawn"


def test_the_sample_has_its_size_keeps_the_asked_rows_and_follows_the_seed() -> None:
    keep = [3, 999_999, 500_000]
    rows = sampling.sample_rows(1_000_000, 40_000, keep=keep, seed=7)
    assert rows.size == 40_000 and np.all(np.diff(rows) > 0)
    assert set(keep) <= set(rows.tolist())
    assert np.array_equal(rows, sampling.sample_rows(1_000_000, 40_000, keep=keep, seed=7))
    assert not np.array_equal(rows, sampling.sample_rows(1_000_000, 40_000, keep=keep, seed=8))
    assert sampling.Drawn(rows, 1_000_000).label() == "40,000 of 1,000,000 points drawn"


def test_a_rare_stratum_keeps_its_floor_and_the_rest_is_proportional() -> None:
    strata = np.array(["common"] * 99_000 + ["rare"] * 500 + ["tiny"] * 20)
    rows = sampling.sample_rows(strata.size, 10_000, strata=strata, seed=0)
    picked = strata[rows]
    assert rows.size == 10_000
    assert (picked == "tiny").sum() == 20  # all of it: fewer rows than the floor
    assert (picked == "rare").sum() >= sampling.MIN_PER_STRATUM
    assert (picked == "common").sum() > 9_000


def test_more_kept_rows_than_the_budget_are_all_kept() -> None:
    rows = sampling.sample_rows(1_000, 10, keep=range(20), seed=0)
    assert rows.tolist() == list(range(20))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="keep rows"):
        sampling.sample_rows(10, 5, keep=[10])
    with pytest.raises(ValueError, match="one label per row"):
        sampling.sample_rows(10, 5, strata=np.zeros(3))
    with pytest.raises(ValueError, match="positive"):
        sampling.per_panel(0, 1, 0)
    assert sampling.per_panel(100_000, 3, 25) == 33_308
