"""score_map: trustworthiness on the sweep's subsample, separation by a label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystalrep.analysis.map_quality import score_map
from crystalrep.analysis.sweeps import map_separation, trustworthiness


def test_a_faithful_map_scores_high_and_a_random_one_lower() -> None:
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(200, 2)), 0.01 * rng.normal(size=(200, 3))]
    good, bad = score_map(X, X[:, :2]), score_map(X, rng.normal(size=(200, 2)))
    assert good.trustworthiness > 0.99 > 0.7 > bad.trustworthiness
    assert good.k == 10 and good.sample_size == good.n == 200
    assert math.isnan(good.separation) and good.label is None


def test_separation_is_the_silhouette_of_the_map_by_label() -> None:
    rng = np.random.default_rng(0)
    coords = np.r_[rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + 8]
    labels = ["a"] * 50 + ["b"] * 50
    scores = score_map(coords, coords, labels=labels, label="side")
    assert scores.label == "side" and scores.separation == pytest.approx(map_separation(coords, labels))
    assert scores.separation > 0.8


def test_large_maps_are_scored_on_a_fixed_subsample_and_tiny_ones_lower_k() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    Y = X[:, :2]
    scores = score_map(X, Y, sample_size=100)
    assert scores.sample_size == 100 and scores.n == 300
    assert scores.trustworthiness == score_map(X, Y, sample_size=100).trustworthiness
    tiny = score_map(X[:5], Y[:5])
    assert tiny.k == 2 and tiny.trustworthiness == pytest.approx(trustworthiness(X[:5], Y[:5], k=2))
    with pytest.raises(ValueError, match="as many rows"):
        score_map(X, Y[:10])
