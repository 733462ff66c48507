"""Physical views of a crystal: the same material seen differently.

One module for every transform the project applies: invariance diagnostics
(:mod:`crystalrep.analysis.diagnostics`) and pretraining views (:mod:`crystalrep.pretrain.tasks`)
draw from the same functions, so "rotation" means one thing everywhere. Every augmentation keeps the composition and the periodic structure: a random rotation of the
frame, a supercell, a small thermal displacement of the atoms, or a shift of the origin. None
substitutes elements or removes atoms, because those would make a different material (a
contrastive positive pair must be the *same* crystal).

Each function takes either a pymatgen ``Structure`` or a ``(lattice, numbers, frac)`` tuple of
arrays (lattice rows are the cell vectors, so ``cart = frac @ lattice``) and returns the same kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import numpy as np
from pymatgen.core import Lattice, Structure

Arrays: TypeAlias = tuple[np.ndarray, np.ndarray, np.ndarray]
Crystal: TypeAlias = Structure | Arrays
Seed: TypeAlias = int | np.random.Generator | None
C = TypeVar("C", Structure, Arrays)  # every transform returns the kind of crystal it was given


@dataclass(frozen=True)
class AugmentConfig:
    """Which views :func:`random_view` composes.

    Args:
        rotate: Apply a uniformly random rotation of the frame.
        shift: Shift the origin by a uniformly random fractional vector.
        supercell_prob: Probability of replacing the cell by a random supercell.
        max_factor: Largest repetition per axis of that supercell.
        sigma: Standard deviation (Å, per Cartesian component) of the thermal perturbation.
    """

    rotate: bool = True
    shift: bool = True
    supercell_prob: float = 0.25
    max_factor: int = 2
    sigma: float = 0.05


def _unpack(crystal: Crystal) -> tuple[np.ndarray, np.ndarray, np.ndarray, Structure | None]:
    if isinstance(crystal, Structure):
        return crystal.lattice.matrix.copy(), np.asarray(crystal.atomic_numbers), crystal.frac_coords.copy(), crystal
    lattice, numbers, frac = crystal
    return np.asarray(lattice, float), np.asarray(numbers), np.asarray(frac, float), None


def _pack(
    lattice: np.ndarray, numbers: np.ndarray, frac: np.ndarray, like: C, species: Sequence[Any] | None = None
) -> C:
    """New arrays as the kind of ``like``: a Structure (``species``, default ``like``'s) or a tuple."""
    if isinstance(like, Structure):
        return Structure(Lattice(lattice), like.species if species is None else species, frac)
    return lattice, numbers, frac


def random_rotation_matrix(seed: Seed = None) -> np.ndarray:
    """A uniformly distributed proper rotation (det = +1), from the QR decomposition of a Gaussian matrix."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_rotation(crystal: C, *, seed: Seed = None) -> C:
    """Rotate the frame: the cell vectors turn, fractional coordinates stay."""
    lattice, numbers, frac, like = _unpack(crystal)
    rot = random_rotation_matrix(seed)
    return _pack(lattice @ rot.T, numbers, frac, crystal)


def supercell(crystal: C, factors: tuple[int, int, int]) -> C:
    """Repeat the cell ``factors`` times along a, b and c (sites ordered image by image)."""
    if len(factors) != 3 or any(int(f) < 1 for f in factors):
        raise ValueError(f"supercell factors must be three integers >= 1, got {factors!r}.")
    lattice, numbers, frac, like = _unpack(crystal)
    f = np.array([int(x) for x in factors])
    images = np.stack(np.meshgrid(*(np.arange(n) for n in f), indexing="ij"), -1).reshape(-1, 3)
    new_frac = ((frac[None, :, :] + images[:, None, :]) / f).reshape(-1, 3)
    new_numbers = np.tile(numbers, len(images))
    species = None if like is None else list(like.species) * len(images)
    return _pack(lattice * f[:, None], new_numbers, new_frac, crystal, species)


def random_supercell(crystal: C, *, max_factor: int = 2, seed: Seed = None) -> C:
    """A supercell with each factor drawn uniformly from 1..``max_factor``."""
    if max_factor < 1:
        raise ValueError(f"max_factor must be >= 1, got {max_factor}.")
    rng = np.random.default_rng(seed)
    a, b, c = (int(x) for x in rng.integers(1, max_factor + 1, size=3))
    return supercell(crystal, (a, b, c))


def perturb(crystal: C, *, sigma: float = 0.05, seed: Seed = None) -> C:
    """Displace every atom by Gaussian noise of ``sigma`` Å per Cartesian component (thermal motion)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 Å, got {sigma}.")
    lattice, numbers, frac, like = _unpack(crystal)
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=frac.shape)
    return _pack(lattice, numbers, np.mod(frac + noise @ np.linalg.inv(lattice), 1.0), crystal)


def origin_shift(crystal: C, *, seed: Seed = None) -> C:
    """Move the origin by a uniformly random fractional vector (all atoms shift together)."""
    lattice, numbers, frac, like = _unpack(crystal)
    shift = np.random.default_rng(seed).random(3)
    return _pack(lattice, numbers, np.mod(frac + shift, 1.0), crystal)


def permute(crystal: C, *, seed: Seed = None) -> C:
    """Reorder the sites randomly (the same crystal listed in another order)."""
    lattice, numbers, frac, like = _unpack(crystal)
    order = np.random.default_rng(seed).permutation(len(numbers))
    species = None if like is None else [like.species[i] for i in order]
    return _pack(lattice, numbers[order], frac[order], crystal, species)


def random_view(crystal: C, *, config: AugmentConfig = AugmentConfig(), seed: Seed = None) -> C:
    """Compose the views enabled in ``config``: supercell, origin shift, perturbation, rotation."""
    rng = np.random.default_rng(seed)
    out = crystal
    if config.supercell_prob > 0 and rng.random() < config.supercell_prob:
        out = random_supercell(out, max_factor=config.max_factor, seed=rng)
    if config.shift:
        out = origin_shift(out, seed=rng)
    if config.sigma > 0:
        out = perturb(out, sigma=config.sigma, seed=rng)
    if config.rotate:
        out = random_rotation(out, seed=rng)
    return out


AUGMENTATIONS: dict[str, Callable[..., Any]] = {
    "rotation": random_rotation,
    "supercell": random_supercell,
    "perturb": perturb,
    "origin_shift": origin_shift,
    "permutation": permute,
}


def get_augmentation(name: str) -> Callable[..., Any]:
    """Look up an augmentation by name; unknown names raise ``ValueError`` listing the valid ones."""
    try:
        return AUGMENTATIONS[name]
    except KeyError:
        raise ValueError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTATIONS)}.") from None
