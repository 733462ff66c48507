"""Verdicts against planted truth: a clean map with a dead probe gets the badge, a good embedding does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crystalrep.analysis.probes import probe
from crystalrep.analysis.projections import project_cached
from crystalrep.analysis.splits import folds
from crystalrep.lecture.verdicts import (
    DEAD_PROBE_R2,
    SEPARATED_SILHOUETTE,
    badge_map_method,
    holdout_elements,
    map_separation_of,
    pretty_map_dead_probe,
    probe_problem,
    separation_label,
)
from crystalrep.store import Store


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three well separated classes; ``y_dead`` is independent noise, ``y_good`` a linear readout."""
    rng = np.random.default_rng(seed)
    classes = np.repeat(np.arange(3), 100)
    centres = np.array([[0.0, 0, 0, 0], [12, 0, 0, 0], [0, 12, 0, 0]])
    X = centres[classes] + rng.normal(size=(300, 4))
    return X, classes, rng.normal(size=300), X @ np.array([1.0, -2.0, 0.5, 3.0])


def _verdict(X: np.ndarray, classes: np.ndarray, y: np.ndarray, store: Store):
    separation = map_separation_of(X, "planted", classes, method="pca", store=store)
    r2 = probe(X, y, folds(pd.DataFrame(index=range(len(y))), seed=0)).r2_mean
    return pretty_map_dead_probe(separation, r2, map_method="pca", label="crystal_system")


def test_clean_map_and_dead_probe_gets_the_badge(tmp_path) -> None:
    X, classes, y_dead, _ = _planted()
    badge = _verdict(X, classes, y_dead, Store(tmp_path))
    assert badge.separation >= SEPARATED_SILHOUETTE and badge.r2 < DEAD_PROBE_R2
    assert badge.flagged
    assert f"≥ {SEPARATED_SILHOUETTE:g}" in badge.help and f"< {DEAD_PROBE_R2:g}" in badge.help
    assert badge.caption.startswith("PCA map silhouette by crystal system 0.")


def test_a_good_embedding_does_not_get_the_badge(tmp_path) -> None:
    X, classes, _, y_good = _planted()
    badge = _verdict(X, classes, y_good, Store(tmp_path))
    assert badge.r2 > 0.99 and not badge.flagged


def test_an_unstructured_map_does_not_get_the_badge(tmp_path) -> None:
    X, _, y_dead, _ = _planted()
    shuffled = np.random.default_rng(1).permutation(np.repeat(np.arange(3), 100))
    badge = _verdict(X, shuffled, y_dead, Store(tmp_path))
    assert badge.separation < SEPARATED_SILHOUETTE and not badge.flagged


def test_thresholds_and_nan() -> None:
    kw = {"map_method": "tsne", "label": "prototype"}
    assert pretty_map_dead_probe(SEPARATED_SILHOUETTE, DEAD_PROBE_R2 - 1e-9, **kw).flagged
    assert not pretty_map_dead_probe(SEPARATED_SILHOUETTE - 1e-9, -1.0, **kw).flagged
    assert not pretty_map_dead_probe(0.9, DEAD_PROBE_R2, **kw).flagged
    nan = pretty_map_dead_probe(float("nan"), -1.0, **kw)
    assert not nan.flagged and "undefined" in nan.caption and nan.caption.startswith("t-SNE")


def test_badge_prefers_a_cached_tsne_map(tmp_path) -> None:
    store = Store(tmp_path)
    X = np.random.default_rng(0).normal(size=(40, 5))
    assert badge_map_method("emb", store=store) == "pca"
    project_cached(X, "emb", method="tsne", seed=0, store=store, params={"n_iter": 50, "perplexity": 5.0})
    assert badge_map_method("emb", store=store) == "pca"  # other parameters are another map
    project_cached(X, "emb", method="tsne", seed=0, store=store)
    assert badge_map_method("emb", store=store) == "tsne"


def test_separation_label_prefers_crystal_system() -> None:
    assert separation_label(pd.DataFrame({"crystal_system": ["cubic", "hexagonal"], "prototype": ["a", "b"]})) == "crystal_system"
    assert separation_label(pd.DataFrame({"crystal_system": ["cubic", "cubic"], "prototype": ["a", "b"]})) == "prototype"
    assert separation_label(pd.DataFrame({"crystal_system": ["cubic", "cubic"]})) is None


def _table(chemsys: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"chemsys": chemsys})


def test_five_crystals_cannot_be_probed_with_five_folds() -> None:
    y = np.arange(5, dtype=float)
    message = probe_problem(_table(["Fe", "O", "Na", "Cl", "Si"]), y, split="random")
    assert message == ("This dataset has 5 labelled crystals; a 5-fold probe needs at least 10 "
                       "(2 test crystals per fold), so it cannot be probed.")
    assert probe_problem(_table(["Fe"] * 10), np.arange(10.0), split="random") is None


def test_missing_labels_and_too_few_systems_are_explained() -> None:
    y = np.array([1.0] * 8 + [np.nan] * 12)
    assert "8 labelled crystals" in probe_problem(_table(["Fe"] * 20), y, split="random")
    message = probe_problem(_table(["Fe", "O"] * 10), np.arange(20.0), split="grouped")
    assert message.startswith("5 folds need at least 5 chemical systems")


@pytest.mark.parametrize(("element", "ok"), [("O", True), ("Fe", False), ("Xe", False)])
def test_element_split_needs_two_crystals_on_each_side(element: str, ok: bool) -> None:
    table = _table(["Fe-O", "O-Ti", "Na-O", "Cl-Na", "Si", "Mg"])
    message = probe_problem(table, np.arange(6.0), split="element", element=element)
    assert (message is None) is ok
    if element == "Xe":
        assert message.startswith("No crystal contains 'Xe'")


def test_holdout_elements_counts_labelled_crystals() -> None:
    table = _table(["Fe-O", "O-Ti", "Na-O", "Cl-Na", "Si", "Mg"])
    assert holdout_elements(table, np.arange(6.0)) == [("O", 3), ("Na", 2)]
    y = np.array([np.nan, 1, 2, 3, 4, 5])
    assert holdout_elements(table, y) == [("Na", 2), ("O", 2)]
