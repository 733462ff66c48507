"""Synthetic crystals for the study's tests: no ../shared/data needed."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset

PEROV = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
A_SITES = ["Na", "K", "Rb", "Ca", "Sr", "Ba", "La", "Y"]
B_SITES = ["Ti", "Zr", "Nb", "Ta", "Al", "Ga", "Sc", "Mn", "Fe", "Co"]
SALT_A = ["Li", "Na", "K", "Mg", "Ca", "Sr"]
SALT_B = ["F", "Cl", "Br", "O", "S"]


def _crystals(seed: int) -> list[tuple[Structure, float]]:
    """Every cubic perovskite ABO3 and rock salt of the element lists once (unique formulas), in a
    seeded order, with a random lattice constant; the property is that constant per atom in the cell."""
    rng = np.random.default_rng(seed)
    out = []
    for a_site in A_SITES:
        for b_site in B_SITES:
            a = float(rng.uniform(3.7, 4.3))
            out.append((Structure(Lattice.cubic(a), [a_site, b_site, "O", "O", "O"], PEROV), a / 5))
    for a_site in SALT_A:
        for b_site in SALT_B:
            a = float(rng.uniform(4.0, 6.0))
            out.append((Structure(Lattice.cubic(a), [a_site, b_site], [[0, 0, 0], [0.5, 0.5, 0.5]]), a / 2))
    return [out[k] for k in rng.permutation(len(out))]


def synthetic(name: str, crystals: list[tuple[Structure, float]], seed: int) -> Dataset:
    """A dataset of ``crystals`` with property ``a_per_atom`` (plus a little noise: learnable)."""
    noise = np.random.default_rng(seed).normal(scale=0.01, size=len(crystals))
    return Dataset.from_structures(name, [f"{name}-{k}" for k in range(len(crystals))], [s for s, _ in crystals],
                                   properties={"a_per_atom": [v + e for (_, v), e in zip(crystals, noise, strict=True)]})


@pytest.fixture(scope="session")
def labelled() -> Dataset:
    """70 labelled synthetic crystals (the evaluation set); no formula is shared with ``unlabelled``."""
    return synthetic("synth-eval", _crystals(0)[:70], seed=1)


@pytest.fixture(scope="session")
def unlabelled() -> Dataset:
    """The other 40 synthetic crystals (a corpus source)."""
    return synthetic("synth-corpus", _crystals(0)[70:], seed=2)
