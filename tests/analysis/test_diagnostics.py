"""Invariance diagnostics: the transforms keep the crystal, and the report catches violations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.analysis.diagnostics import TRANSFORMS, invariance, invariance_for_dataset
from crystalrep.datasets import Dataset
from crystalrep.encoders import get_encoder
from crystalrep.encoders.base import Encoder
from crystalrep.transforms import random_rotation_matrix


def _sorted_distances(s: Structure) -> np.ndarray:
    return np.sort(s.distance_matrix.ravel())


def test_random_rotation_is_proper() -> None:
    rot = random_rotation_matrix(np.random.default_rng(0))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)


def test_transforms_keep_the_crystal(tiny_structures: list[Structure]) -> None:
    rng = np.random.default_rng(0)
    s = tiny_structures[4]
    rotate, supercell, thermal = (TRANSFORMS[k][0] for k in ("rotation", "supercell", "thermal"))
    for name in ("rotation", "translation", "permutation"):
        t = TRANSFORMS[name][0](s, seed=rng)
        assert t.composition == s.composition and t.volume == pytest.approx(s.volume)
        np.testing.assert_allclose(_sorted_distances(t), _sorted_distances(s), atol=1e-9)
    rotated = rotate(s, seed=rng)
    assert not np.allclose(rotated.lattice.matrix, s.lattice.matrix)
    big = supercell(s, seed=rng)
    assert len(big) == 8 * len(s) and big.volume == pytest.approx(8 * s.volume)
    rattled = thermal(s, seed=rng)
    step = rattled.frac_coords - s.frac_coords
    moved = np.linalg.norm((step - np.round(step)) @ s.lattice.matrix, axis=1)  # minimum image
    assert 0 < moved.mean() < 0.2


class _SizeSensitive(Encoder):
    """A deliberately broken encoder: sums Cartesian features over atoms."""

    name = "broken"

    @property
    def dim(self) -> int:
        return 4

    @property
    def config(self) -> dict[str, Any]:
        return {}

    def embed_structures(self, structures, *, device="auto", batch_size=64, progress=None) -> np.ndarray:  # noqa: ANN001
        rows = [np.r_[s.cart_coords.sum(axis=0), len(s)] for s in structures]
        return np.asarray(rows, dtype=np.float32)


def test_report_catches_a_broken_encoder(tiny_structures: list[Structure]) -> None:
    report = invariance(_SizeSensitive(), tiny_structures, n=3, seed=1)
    t = report["transforms"]
    assert t["supercell"]["passed"] is False and t["supercell"]["max"] > 1
    assert t["rotation"]["passed"] is False
    assert t["permutation"]["passed"] is True  # a sum does not care about order
    assert t["thermal"]["passed"] is None and t["thermal"]["expected_invariant"] is False


def test_report_shape_for_magpie(tiny_structures: list[Structure]) -> None:
    report = invariance(get_encoder("magpie"), tiny_structures, n=50)
    assert report["n"] == len(tiny_structures) and report["encoder"] == "magpie"
    assert list(report["transforms"]) == list(TRANSFORMS)
    assert all(v["max"] == 0.0 and v["median"] == 0.0 for v in report["transforms"].values())


def test_subset_of_transforms_and_errors(tiny_structures: list[Structure]) -> None:
    report = invariance(get_encoder("magpie"), tiny_structures, n=2, transforms=["supercell"])
    assert list(report["transforms"]) == ["supercell"] and report["n"] == 2
    with pytest.raises(ValueError, match="valid transforms are: rotation"):
        invariance(get_encoder("magpie"), tiny_structures, transforms=["shear"])
    with pytest.raises(ValueError, match="at least one structure"):
        invariance(get_encoder("magpie"), [])


def test_dataset_sample_is_seeded(tiny_structures: list[Structure]) -> None:
    ds = Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures)
    a = invariance_for_dataset(get_encoder("soap"), ds, n=3, seed=4)
    b = invariance_for_dataset(get_encoder("soap"), ds, n=3, seed=4)
    assert a == b and len(a["rows"]) == 3 and a["dataset"] == "tiny"
    assert all(a["transforms"][t]["passed"] for t in ("rotation", "translation", "permutation", "supercell"))
