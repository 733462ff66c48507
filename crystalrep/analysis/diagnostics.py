"""Invariance diagnostics: how much does an embedding move when the crystal does not change?

For each structure ``x`` and transform ``T`` the score is ``|z(Tx) - z(x)| / |z(x)|``. Rotation,
origin shift, atom permutation and a 2x2x2 supercell describe the same crystal, so a sound
encoder scores ~0 (float32 noise, < 1e-4); a 0.05 Å thermal rattle is a different crystal and
is reported for scale (expected non-zero).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep import transforms

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = ["INVARIANCE_TOLERANCE", "TRANSFORMS", "invariance", "invariance_for_dataset"]

INVARIANCE_TOLERANCE = 1e-4
THERMAL_SIGMA = 0.05  # Å, per Cartesian component

Transform = Callable[..., "Structure"]


def _supercell_222(crystal: Structure, *, seed: object = None) -> Structure:
    """The 2x2x2 supercell (eight times the atoms, same crystal); ``seed`` is unused."""
    return transforms.supercell(crystal, (2, 2, 2))


# name -> (transform taking ``seed=``, expected to leave the embedding unchanged); the transforms
# themselves live in :mod:`crystalrep.transforms`, shared with pretraining's augmentations.
TRANSFORMS: dict[str, tuple[Transform, bool]] = {
    "rotation": (transforms.random_rotation, True),
    "translation": (transforms.origin_shift, True),
    "permutation": (transforms.permute, True),
    "supercell": (_supercell_222, True),
    "thermal": (partial(transforms.perturb, sigma=THERMAL_SIGMA), False),
}


def invariance(
    encoder: Encoder,
    structures: Sequence[Structure],
    *,
    n: int = 50,
    seed: int = 0,
    transforms: Sequence[str] | None = None,
    device: str = "auto",
    batch_size: int = 64,
) -> dict[str, Any]:
    """Relative embedding change under each transform, over (a random sample of) structures.

    Args:
        encoder: The encoder to test.
        structures: Candidate structures; ``n`` of them are drawn without replacement.
        n: How many structures to use (all if fewer are given).
        seed: Seed for the sample and every random transform.
        transforms: Names from :data:`TRANSFORMS`; all by default.
        device: Where torch encoders run.
        batch_size: Crystals per batch.

    Returns:
        Plain-JSON dict: ``encoder``, ``n``, ``seed``, ``tolerance`` and ``transforms`` mapping
        each name to ``max``, ``median``, ``expected_invariant`` and ``passed`` (``None`` for
        transforms that are not expected to be invariant).

    Raises:
        ValueError: For an unknown transform name or no structures.
    """
    names = list(transforms) if transforms is not None else list(TRANSFORMS)
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"Unknown transform(s) {unknown}; valid transforms are: {', '.join(TRANSFORMS)}.")
    if len(structures) == 0:
        raise ValueError("Invariance needs at least one structure.")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(structures), size=min(n, len(structures)), replace=False))
    sample = [structures[int(i)] for i in picked]
    base = encoder.embed_structures(sample, device=device, batch_size=batch_size).astype(np.float64)
    norms = np.maximum(np.linalg.norm(base, axis=1), np.finfo(np.float32).tiny)
    report: dict[str, Any] = {}
    for name in names:
        transform, expected = TRANSFORMS[name]
        moved = [transform(s, seed=np.random.default_rng([seed, k])) for k, s in enumerate(sample)]
        changed = encoder.embed_structures(moved, device=device, batch_size=batch_size).astype(np.float64)
        rel = np.linalg.norm(changed - base, axis=1) / norms
        worst = float(rel.max())
        report[name] = {
            "max": worst,
            "median": float(np.median(rel)),
            "expected_invariant": expected,
            "passed": (worst < INVARIANCE_TOLERANCE) if expected else None,
        }
    return {
        "encoder": encoder.name,
        "n": len(sample),
        "seed": seed,
        "tolerance": INVARIANCE_TOLERANCE,
        "transforms": report,
    }


def invariance_for_dataset(
    encoder: Encoder, dataset: Dataset, *, n: int = 50, seed: int = 0, **kwargs: Any
) -> dict[str, Any]:
    """:func:`invariance` on ``n`` random rows of a dataset (only those rows are built)."""
    rng = np.random.default_rng(seed)
    rows = sorted(int(i) for i in rng.choice(len(dataset), size=min(n, len(dataset)), replace=False))
    result = invariance(encoder, [dataset.structure(i) for i in rows], n=len(rows), seed=seed, **kwargs)
    return {**result, "dataset": dataset.name, "rows": rows}
