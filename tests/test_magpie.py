"""Vectorised Magpie statistics equal matminer's ElementProperty.featurize."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Element, Lattice, Structure

from crystalrep.datasets import Dataset
from crystalrep.encoders import get_encoder
from crystalrep.encoders.magpie import (
    MAX_Z,
    dataset_features,
    magpie_features,
    magpie_table,
    reduced_compositions,
)

HAND_PICKED = [
    "Fe", "He", "Og", "Fe2O3", "NaCl", "H2O", "LiFePO4", "SrTiO3", "Ba0.3Sr0.7TiO3", "Fe0.5Ni0.5",
    "Al1.000001Cu1", "Al1.1Cu1", "Ne1Ar1Kr1Xe1", "CoCrFeMnNiCuZnGaGeAs", "U3Pu0.25Am0.125",
    "H1e-5Pd", "Cf4", "C60", "Mg0.333333Al0.666667", "Na2Cl2",
]


def random_compositions(n: int, seed: int = 0) -> list[Composition]:
    """``n`` compositions of 1–9 elements up to Z=103, integer or fractional amounts."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n):
        zs = rng.choice(np.arange(1, 104), size=int(rng.integers(1, 10)), replace=False)
        amounts = rng.integers(1, 9, len(zs)).astype(float) if c % 2 else rng.random(len(zs)).round(4) + 0.001
        out.append(Composition({Element.from_Z(int(z)): float(a) for z, a in zip(zs, amounts, strict=True)}))
    return out


@pytest.fixture(scope="module")
def featurizer():
    return get_encoder("magpie").featurizer()


@pytest.fixture(scope="module")
def table(featurizer) -> np.ndarray:
    return magpie_table(featurizer)


def matminer(featurizer, comp: Composition, *, reduce: bool = False) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy and pymatgen warn on missing element data
        return np.asarray(featurizer.featurize(comp.reduced_composition if reduce else comp), dtype=np.float64)


def padded(comps: list[Composition]) -> tuple[np.ndarray, np.ndarray]:
    """Element and amount arrays in each composition's own order, as matminer iterates it."""
    width = max(len(c.element_composition) for c in comps)
    elements, amounts = np.zeros((len(comps), width), np.int64), np.zeros((len(comps), width))
    for row, comp in enumerate(comps):
        for slot, (el, amount) in enumerate(comp.element_composition.items()):
            elements[row, slot], amounts[row, slot] = el.Z, amount
    return elements, amounts


def test_table_is_matminers_data(featurizer, table: np.ndarray) -> None:
    assert table.shape == (MAX_Z + 1, 22) and np.isnan(table[0]).all()
    assert list(featurizer.stats) == ["minimum", "maximum", "range", "mean", "avg_dev", "mode"]
    source = featurizer.data_source
    for z in (1, 8, 26, 92, 118):
        expected = [source.get_elemental_property(Element.from_Z(z), f) for f in featurizer.features]
        np.testing.assert_array_equal(table[z], expected)
    assert np.isnan(table[2, featurizer.features.index("Electronegativity")])  # He: missing in matminer too


def test_features_equal_matminer_on_varied_compositions(featurizer, table: np.ndarray) -> None:
    comps = [Composition(f) for f in HAND_PICKED] + random_compositions(60)
    sizes = [len(c) for c in comps]
    fractional = [c for c in comps if not all(float(a).is_integer() for a in c.values())]
    assert min(sizes) == 1 and max(sizes) >= 9 and len(fractional) >= 30
    ours = magpie_features(table, *padded(comps), featurizer.stats)
    ref = np.stack([matminer(featurizer, c) for c in comps])
    assert ours.shape == ref.shape == (len(comps), 132)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.isnan(ref).any()  # missing element data (He, Og, ...) really is exercised
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10, equal_nan=True)


def test_mode_breaks_ties_like_matminer(featurizer, table: np.ndarray) -> None:
    mode = featurizer.stats.index("mode")
    number = featurizer.features.index("Number") * len(featurizer.stats) + mode
    cases = {"FeNi": 26, "Fe2Ni": 26, "FeNi2": 28, "Fe1Ni1.000001": 26, "Fe1Ni1.001": 28, "NiFe": 26}
    comps = [Composition(f) for f in cases]
    ours = magpie_features(table, *padded(comps), featurizer.stats)[:, number]
    assert ours.tolist() == list(cases.values())
    assert ours.tolist() == [matminer(featurizer, c)[number] for c in comps]


def test_reduced_compositions_sorts_reduces_and_pads() -> None:
    numbers = np.array([8, 22, 8, 38, 8, 26, 26, 8, 8, 8, 26, 26, 8, 8, 8, 11])
    elements, amounts = reduced_compositions(numbers, np.array([0, 5, 15, 16]))
    assert elements.tolist() == [[8, 22, 38], [8, 26, 0], [11, 0, 0]]
    assert amounts.tolist() == [[3, 1, 1], [3, 2, 0], [1, 0, 0]]  # Fe4O6 -> Fe2O3
    empty = reduced_compositions(np.zeros(0, np.int64), np.zeros(1, np.int64))
    assert empty[0].shape == empty[1].shape == (0, 0)


@pytest.mark.parametrize(("numbers", "offsets", "match"), [
    ([0, 8], [0, 2], "atomic numbers"), ([119], [0, 1], "atomic numbers"),
    ([8, 8], [0, 0, 2], "no atoms"), ([8, 8], [0, 1], "offsets"),
])
def test_reduced_compositions_rejects_bad_input(numbers: list[int], offsets: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reduced_compositions(np.array(numbers), np.array(offsets))


def test_unknown_statistic_raises(featurizer) -> None:
    class Other:
        features, stats, data_source = featurizer.features, ["minimum", "holder_mean::2"], featurizer.data_source

    with pytest.raises(ValueError, match="holder_mean"):
        magpie_table(Other())


def test_dataset_features_blocks_and_progress(featurizer, table: np.ndarray) -> None:
    comps = random_compositions(30, seed=1)
    numbers = [np.repeat([el.Z for el in c], [max(1, int(a)) for a in c.values()]) for c in comps]
    offsets = np.concatenate([[0], np.cumsum([len(z) for z in numbers])])
    calls: list[tuple[int, int]] = []
    rows, distinct = dataset_features(featurizer, table, np.concatenate(numbers), offsets, batch_size=7,
                                      progress=lambda d, t: calls.append((d, t)))
    assert calls == [(7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]
    whole = magpie_features(table, *reduced_compositions(np.concatenate(numbers), offsets), featurizer.stats)
    np.testing.assert_array_equal(rows, whole)
    assert distinct == 30


def test_encoder_matches_matminer_on_reduced_formula(featurizer, tiny_structures: list[Structure]) -> None:
    extra = [
        Structure(Lattice.cubic(5.0), ["He", "Ar"], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # missing data -> 0
        Structure(Lattice.cubic(4.0), ["Na"] * 2 + ["Cl"] * 2, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0], [0, 0.5, 0]]),
    ]
    structures = [*tiny_structures, *extra]
    encoder = get_encoder("magpie")
    ours = encoder.embed_structures(structures, batch_size=2)
    ref = np.stack([matminer(featurizer, s.composition, reduce=True) for s in structures])
    np.testing.assert_array_equal(ours, np.nan_to_num(ref, nan=0.0).astype(np.float32))
    assert encoder.last_run_info["distinct_compositions"] == len(structures) - 1  # NaCl twice
    assert "MagpieData mean Electronegativity" in encoder.last_run_info["imputed_columns"]
    ds = Dataset.from_structures("mix", range(len(structures)), structures)
    np.testing.assert_array_equal(encoder.embed_dataset(ds, batch_size=3), ours)
    assert encoder.embed_structures([]).shape == (0, 132)


@pytest.mark.shared
def test_encoder_matches_matminer_on_real_crystals(shared_data: Path, featurizer) -> None:
    cifs = pd.read_csv(shared_data / "perov_5" / "val.csv", nrows=60, usecols=["cif"])["cif"]
    structures = [Structure.from_str(cif, fmt="cif") for cif in cifs]
    ours = get_encoder("magpie").embed_structures(structures)
    ref = np.stack([matminer(featurizer, s.composition) for s in structures])  # unreduced, as users call it
    np.testing.assert_allclose(ours, ref.astype(np.float32), rtol=1e-6, atol=0)
