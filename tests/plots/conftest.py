"""Shared fixtures of the figure tests: a 20-crystal dataset with numeric, wide, NaN and categorical columns."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.datasets import Dataset, PropertyInfo


@pytest.fixture(scope="module")
def ds(tiny_structures: list[Structure]) -> Dataset:
    structures = tiny_structures * 4  # 20 crystals
    n = len(structures)
    rng = np.random.default_rng(0)
    return Dataset.from_structures(
        "maps", [f"m{i}" for i in range(n)], structures,
        properties={"volume": [s.volume for s in structures],
                    "energy": [float("nan") if i == 3 else float(v) for i, v in enumerate(rng.normal(-1, 1, n))],
                    "wide": [10.0 ** (i % 5) for i in range(n)],
                    "kind": [None if i == 0 else "abcdefghijklmn"[i % 14] for i in range(n)]},
        property_info={"volume": PropertyInfo("volume", unit="Å^3"), "kind": PropertyInfo("kind", kind="categorical")},
    )


@pytest.fixture(scope="module")
def coords(ds: Dataset) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(len(ds), 2)).astype(np.float32)
