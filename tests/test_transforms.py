from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.transforms import (
    AugmentConfig,
    get_augmentation,
    origin_shift,
    perturb,
    random_rotation,
    random_rotation_matrix,
    random_view,
    supercell,
)

CUTOFF = 5.0


def neighbour_distances(s: Structure) -> np.ndarray:
    """Sorted multiset of all periodic neighbour distances within CUTOFF (every centre)."""
    _, _, _, dist = s.get_neighbor_list(r=CUTOFF)
    return np.sort(dist)


def as_arrays(s: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return s.lattice.matrix.copy(), np.array(s.atomic_numbers), s.frac_coords.copy()


def test_rotation_matrix_is_proper_and_seeded():
    rot = random_rotation_matrix(3)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_array_equal(rot, random_rotation_matrix(3))
    assert not np.allclose(rot, random_rotation_matrix(4))


@pytest.mark.parametrize("view", [lambda s: random_rotation(s, seed=1), lambda s: origin_shift(s, seed=2)])
def test_rigid_views_keep_the_material(tiny_structures, view):
    for s in tiny_structures:
        out = view(s)
        assert out.composition == s.composition
        np.testing.assert_allclose(neighbour_distances(out), neighbour_distances(s), atol=1e-6)


def test_rotation_turns_cartesian_frame(tiny_structures):
    s = tiny_structures[0]
    out = random_rotation(s, seed=0)
    assert not np.allclose(out.lattice.matrix, s.lattice.matrix)
    assert out.lattice.volume == pytest.approx(s.lattice.volume)


@pytest.mark.parametrize("factors", [(2, 1, 1), (1, 2, 3), (2, 2, 2)])
def test_supercell_repeats_distances_by_its_factor(tiny_structures, factors):
    mult = int(np.prod(factors))
    for s in tiny_structures:
        out = supercell(s, factors)
        assert len(out) == mult * len(s)
        assert out.composition.reduced_composition == s.composition.reduced_composition
        np.testing.assert_allclose(neighbour_distances(out), np.sort(np.repeat(neighbour_distances(s), mult)), atol=1e-6)


def test_array_and_structure_inputs_agree(tiny_structures):
    s = tiny_structures[2]
    lat, num, frac = supercell(as_arrays(s), (1, 2, 1))
    ref = supercell(s, (1, 2, 1))
    np.testing.assert_allclose(lat, ref.lattice.matrix)
    np.testing.assert_array_equal(num, ref.atomic_numbers)
    np.testing.assert_allclose(frac, ref.frac_coords)


def test_perturbation_moves_distances_by_about_sigma(tiny_structures):
    sigma = 0.05
    changes = []
    for s in tiny_structures:
        out = perturb(s, sigma=sigma, seed=5)
        assert out.composition == s.composition
        changes.append((out.distance_matrix - s.distance_matrix)[np.triu_indices(len(s), 1)])
    rms = float(np.sqrt(np.mean(np.concatenate(changes) ** 2)))
    # a pair distance moves by the difference of two independent displacements: about sigma * sqrt(2)
    assert 0.4 * sigma < rms < 3 * sigma


def test_perturbation_zero_sigma_is_identity_and_negative_rejected(tiny_structures):
    s = tiny_structures[3]
    np.testing.assert_allclose(perturb(s, sigma=0.0, seed=0).frac_coords, s.frac_coords)
    with pytest.raises(ValueError, match="sigma"):
        perturb(s, sigma=-1.0)


def test_random_view_is_seeded_and_keeps_composition(tiny_structures):
    cfg = AugmentConfig(supercell_prob=1.0, sigma=0.02)
    for s in tiny_structures:
        a, b = random_view(as_arrays(s), config=cfg, seed=7), random_view(as_arrays(s), config=cfg, seed=7)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        counts = np.bincount(a[1], minlength=120)
        ref = np.bincount(np.array(s.atomic_numbers), minlength=120)
        assert len(a[1]) % len(s) == 0 and np.array_equal(counts, ref * (len(a[1]) // len(s)))


def test_unknown_augmentation_lists_valid_names():
    with pytest.raises(ValueError, match="rotation"):
        get_augmentation("swap-elements")
    with pytest.raises(ValueError, match="factors"):
        supercell((np.eye(3), np.array([1]), np.zeros((1, 3))), (0, 1, 1))
