"""The built-in default dataset: the committed data/default, its recipes, volumes and labels."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Structure

from crystalrep.datasets import Dataset, default_dataset_dir
from crystalrep.sources import prototypes as proto
from crystalrep.sources import volumes
from crystalrep.sources.default import FAMILY_OF_AFLOW, aflow_library
from crystalrep.sources.default_labels import PROPERTY_INFO, formation_energies
from crystalrep.structures import validate_structure

FAMILIES = set(proto.TEMPLATES) | {"alpha-N2"}


@pytest.fixture(scope="module")
def default_ds() -> Dataset:
    return Dataset.load(default_dataset_dir())


@pytest.fixture(scope="module")
def references() -> dict[str, Structure]:
    return {tags["aflow"]: s for tags, s in aflow_library() if tags["aflow"] in FAMILY_OF_AFLOW}


def test_committed_dataset_shape_and_columns(default_ds: Dataset) -> None:
    assert 1000 <= len(default_ds) <= 3000
    assert len(set(default_ds.ids)) == len(default_ds)
    assert set(PROPERTY_INFO) <= set(default_ds.table.columns)
    for name, info in PROPERTY_INFO.items():
        assert default_ds.properties[name] == info
        assert info.description
    for name in ("density", "volume_per_atom", "mean_atomic_mass", "chgnet_energy_per_atom"):
        assert default_ds.properties[name].unit
    for name in ("chgnet_energy_per_atom", "chgnet_formation_energy_per_atom"):
        assert "not DFT" in default_ds.properties[name].description
        assert "CHGNet 0.3.0" in default_ds.properties[name].description
    assert "license" in default_ds.meta and "Mehl" in default_ds.meta["license"]
    assert default_ds.meta["source"].startswith("crystalrep data build-default")


def test_committed_structures_are_valid(default_ds: Dataset) -> None:
    assert np.isfinite(default_ds.lattices).all() and np.isfinite(default_ds.frac_coords).all()
    assert int(np.diff(default_ds.offsets).max()) <= 64
    for i, ident in enumerate(default_ds.ids):
        validate_structure(default_ds.structure(i), source=ident, max_atoms=64)


def test_committed_families_and_labels(default_ds: Dataset) -> None:
    table = default_ds.table
    counts = table["prototype"].value_counts()
    assert FAMILIES <= set(counts.index)
    assert set(table["source_kind"]) == {"aflow-prototype", "substitution"}
    assert (table["spacegroup"] > 0).all()
    nacl = table.set_index("id").loc["aflow-AB_cF8_225_a_b"]
    assert nacl["formula"] == "NaCl" and nacl["prototype"] == "rocksalt"
    assert nacl["volume_per_atom"] == pytest.approx(22.4, rel=0.05)
    energy = table["chgnet_energy_per_atom"]
    assert energy.notna().mean() > 0.99  # NaN only where CHGNet lacks an element (Z > 94)
    ionic = table["prototype"].isin(["rocksalt", "fluorite", "perovskite", "spinel", "rutile", "corundum", "cdi2"])
    assert (table.loc[ionic, "chgnet_formation_energy_per_atom"] < 0).mean() > 0.9
    refs = default_ds.meta["chgnet_elemental_references"]
    assert table.set_index("id").loc[list(refs.values()), "n_elements"].eq(1).all()


@pytest.mark.parametrize("family", sorted(proto.RECIPES))
def test_recipes_are_charge_balanced_and_deterministic(family: str) -> None:
    choices = proto.RECIPES[family]()
    assert choices == proto.RECIPES[family]()
    assert 0 < len(choices) <= 200 + len(proto.lecture_perovskites())
    assert len({formula for formula, *_ in choices}) == len(choices)
    for formula, roles, oxidation in choices:
        comp = Composition(formula)
        assert set(roles.values()) == {el.symbol for el in comp.elements}
        if oxidation:
            assert sum(oxidation[el.symbol] * n for el, n in comp.items()) == 0, formula


def test_perovskites_always_hold_the_lecture_family() -> None:
    formulas = {formula for formula, *_ in proto.RECIPES["perovskite"]()}
    family = {formula for formula, *_ in proto.lecture_perovskites()}
    assert len(family) == 16 and {"BaTiO3", "SrTiO3", "BaZrO3", "SrZrO3", "PbTiO3", "CaHfO3"} <= family
    assert family <= formulas
    drawn = formulas - family  # the seeded sample of the other perovskites is unchanged by the family
    assert len(drawn) == proto.SAMPLE_SIZES["perovskite"] - len(family & {"CaTiO3", "SrTiO3", "CaZrO3", "SrSnO3"})


def test_committed_dataset_holds_the_lecture_family(default_ds: Dataset) -> None:
    rows = default_ds.table.set_index("id")
    for formula, *_ in proto.lecture_perovskites():
        row = rows.loc[f"perovskite-{formula}"]
        assert row["prototype"] == "perovskite" and row["spacegroup"] == 221
        assert Composition(row["formula"]) == Composition(formula) and np.isfinite(row["chgnet_energy_per_atom"])
    assert default_ds.meta["recipe_version"] >= 2


@pytest.mark.parametrize("family", sorted(proto.TEMPLATES))
def test_templates_match_their_aflow_prototype(family: str, references: dict[str, Structure]) -> None:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    template = proto.TEMPLATES[family]
    ref = references[template.aflow]
    roles = dict.fromkeys(role for role, _ in template.sites)
    elements = sorted({el.symbol for el in ref.composition.elements})
    built = template.build(dict(zip(roles, elements, strict=True)))
    assert StructureMatcher().fit_anonymous(built, ref)


@pytest.mark.parametrize(
    ("family", "roles", "oxidation", "expected"),
    [
        ("rocksalt", {"A": "K", "X": "Cl"}, {"K": 1, "Cl": -1}, 31.1),
        ("perovskite", {"A": "Sr", "B": "Ti", "X": "O"}, {"Sr": 2, "Ti": 4, "O": -2}, 11.9),
        ("spinel", {"A": "Mg", "B": "Al", "X": "O"}, {"Mg": 2, "Al": 3, "O": -2}, 9.42),
        ("zincblende", {"A": "Ga", "X": "As"}, {"Ga": 3, "As": -3}, 22.6),
        ("heusler", {"X": "Co", "Y": "Mn", "Z": "Si"}, {}, 11.3),
        ("bcc", {"A": "Fe"}, {}, 11.78),
        ("diamond", {"A": "Ge"}, {}, 22.6),
    ],
)
def test_predicted_volumes_match_experiment(
    family: str, roles: dict[str, str], oxidation: dict[str, int], expected: float, references: dict[str, Structure]
) -> None:
    template = proto.TEMPLATES[family]
    ref = volumes.decorated(references[template.aflow])
    s = volumes.predicted_volume(template.build(roles), reference=ref, oxidation_states=oxidation)
    assert s is not None
    assert s.volume / len(s) == pytest.approx(expected, rel=0.1)


def test_dimer_has_gas_phase_bond() -> None:
    s = proto.dimer_structure("F")
    _, _, _, dist = s.get_neighbor_list(r=4.0)
    assert dist.min() == pytest.approx(proto.DIMER_BONDS["F"], abs=1e-6)
    assert np.sort(dist)[len(s)] > 2.5  # next contact is between molecules


def test_formation_energies_use_lowest_elemental_row(tiny_structures: list[Structure]) -> None:
    nacl, fe = tiny_structures[0], tiny_structures[1]
    na = Structure(nacl.lattice, ["Na"], [[0, 0, 0]])
    cl = Structure(nacl.lattice, ["Cl"], [[0, 0, 0]])
    ids = ["nacl", "na-a", "na-b", "cl", "fe"]
    energies = np.array([-3.5, -1.0, -1.2, -2.0, np.nan])
    form, refs = formation_energies(ids, [nacl, na, na, cl, fe], energies)
    assert refs == {"Cl": "cl", "Na": "na-b"}
    assert form[0] == pytest.approx(-3.5 - 0.5 * (-1.2) - 0.5 * (-2.0))
    assert form[2] == 0.0 and np.isnan(form[4])


@pytest.mark.slow
def test_structures_rebuild_to_the_committed_fingerprint(default_ds: Dataset) -> None:
    from crystalrep.sources.default import default_structures

    ids, structures, labels = default_structures()
    rebuilt = Dataset.from_structures("default", ids, structures)
    assert rebuilt.fingerprint == default_ds.fingerprint
    for name in ("prototype", "volume_per_atom", "density"):
        assert list(default_ds.table[name]) == labels[name]


@pytest.mark.slow
def test_chgnet_energies_reproduce_committed_values(default_ds: Dataset) -> None:
    from crystalrep.sources.default_labels import chgnet_energies

    idx = [default_ds.ids.index(i) for i in ("aflow-AB_cF8_225_a_b", "fcc-Cu", "perovskite-SrTiO3") if i in default_ds.ids]
    energies = chgnet_energies([default_ds.structure(i) for i in idx], batch_size=4)
    stored = default_ds.table["chgnet_energy_per_atom"].to_numpy()[idx]
    assert np.allclose(energies, stored, atol=2e-4)
