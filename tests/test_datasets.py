from __future__ import annotations

import os

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep import datasets
from crystalrep.datasets import (
    Dataset,
    DatasetError,
    PropertyInfo,
    dataset_dir,
    datasets_home,
    delete_dataset,
    list_datasets,
    load_dataset,
    save_dataset,
    symmetry_labels,
)


@pytest.fixture()
def tiny(tiny_structures):
    n = len(tiny_structures)
    return Dataset.from_structures(
        "tiny",
        [f"s{i}" for i in range(n)],
        tiny_structures,
        properties={"energy": np.linspace(-1, 1, n), "kind": ["a", "b", "a", "c", "b"][:n]},
        property_info={"energy": PropertyInfo("energy", unit="eV/atom", description="made up")},
        meta={"source": "unit test", "license": "CC0"},
    )


def test_labels_are_computed(tiny):
    t = tiny.table
    assert list(t["formula"][:2]) == ["NaCl", "Fe"]
    assert t.loc[0, "spacegroup"] == 221 and t.loc[0, "crystal_system"] == "cubic"
    assert t.loc[3, "spacegroup"] == 221  # cubic SrTiO3 perovskite
    assert list(t["nsites"]) == [2, 1, 4, 5, 4]
    assert tiny.properties["energy"].unit == "eV/atom"
    assert tiny.properties["kind"].kind == "categorical"


def test_structure_roundtrip_and_arrays(tiny, tiny_structures):
    for i, s in enumerate(tiny_structures):
        assert tiny.structure(i) == s
        lattice, numbers, frac = tiny.arrays(i)
        assert lattice.shape == (3, 3) and len(numbers) == len(s) and frac.shape == (len(s), 3)


def test_save_load_keeps_everything(tiny, tmp_path):
    tiny.save(tmp_path / "tiny")
    back = Dataset.load(tmp_path / "tiny")
    assert back.fingerprint == tiny.fingerprint
    assert back.ids == tiny.ids
    assert back.properties == tiny.properties
    assert back.meta["source"] == "unit test"
    np.testing.assert_allclose(back.table["energy"], tiny.table["energy"])
    np.testing.assert_array_equal(back.numbers, tiny.numbers)


def test_save_is_deterministic(tiny, tmp_path):
    tiny.save(tmp_path / "a")
    tiny.save(tmp_path / "b")
    for f in ("dataset.parquet", "meta.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_fingerprint_sees_structure_changes(tiny, tiny_structures):
    moved = [s.copy() for s in tiny_structures]
    moved[1].translate_sites([0], [0.01, 0, 0])
    other = Dataset.from_structures("tiny", tiny.ids, moved)
    assert other.fingerprint != tiny.fingerprint
    # wrapping a coordinate by a lattice vector is the same crystal
    wrapped = [s.copy() for s in tiny_structures]
    wrapped[0].translate_sites([1], [1.0, 0, 0], to_unit_cell=False)
    assert Dataset.from_structures("tiny", tiny.ids, wrapped).fingerprint == Dataset.from_structures("tiny", tiny.ids, tiny_structures).fingerprint


def test_subset(tiny):
    sub = tiny.subset([3, 0])
    assert sub.ids == ["s3", "s0"] and sub.structure(0) == tiny.structure(3)
    assert len(sub.numbers) == 7


def test_registry_save_list_load_delete(tiny):
    save_dataset(tiny)
    assert "tiny" in [d["name"] for d in list_datasets()]
    assert load_dataset("tiny").fingerprint == tiny.fingerprint
    with pytest.raises(DatasetError, match="already exists"):
        save_dataset(tiny)
    delete_dataset("tiny")
    with pytest.raises(DatasetError, match="no dataset named 'tiny'"):
        load_dataset("tiny")


@pytest.mark.parametrize("name", ["", "../x", "a/b", "x" * 65, "default"])
def test_bad_or_reserved_names(tiny, name):
    tiny.name = name
    with pytest.raises(DatasetError):
        save_dataset(tiny)


def test_duplicate_ids_rejected(tiny_structures):
    with pytest.raises(DatasetError, match="more than once"):
        Dataset.from_structures("d", ["a", "a"], tiny_structures[:2])


def test_corrupt_dataset_is_a_clear_error(tiny, tmp_path):
    tiny.save(tmp_path / "t")
    (tmp_path / "t" / "dataset.parquet").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="cannot be read"):
        Dataset.load(tmp_path / "t")


def test_overwrite_failing_midway_leaves_the_old_dataset_intact(tiny, monkeypatch):
    save_dataset(tiny)
    files = ("dataset.parquet", "meta.json")
    before = {f: (dataset_dir("tiny") / f).read_bytes() for f in files}
    smaller = tiny.subset([0, 1])

    def disk_full(path, obj):
        raise OSError("disk full")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(datasets, "atomic_write_json", disk_full)  # after dataset.parquet is written
        save_dataset(smaller, overwrite=True)
    assert {f: (dataset_dir("tiny") / f).read_bytes() for f in files} == before
    assert load_dataset("tiny").fingerprint == tiny.fingerprint
    assert [p.name for p in datasets_home().iterdir()] == ["tiny"]  # the temporary folder is gone
    save_dataset(smaller, overwrite=True)
    assert len(load_dataset("tiny")) == 2


def test_property_kind_follows_the_data(tiny_structures):
    hints = {
        "energy": PropertyInfo("energy", unit="eV", description="numbers", kind="categorical"),
        "label": PropertyInfo("label", description="words", kind="numeric"),
    }
    ds = Dataset.from_structures("k", list("abcde"), tiny_structures,
                                 properties={"energy": [1, 2, 3, 4, 5], "label": list("xyzxy")},
                                 property_info=hints)
    assert ds.properties["energy"] == PropertyInfo("energy", unit="eV", description="numbers", kind="numeric")
    assert ds.properties["label"] == PropertyInfo("label", description="words", kind="categorical")
    assert ds.table["energy"].dtype == float


def test_labelling_is_silent(tiny_structures, recwarn, capfd):
    noble = Structure(Lattice.cubic(5.3), ["Ne"], [[0, 0, 0]])  # pymatgen: no Pauling electronegativity
    squashed = Structure(Lattice.cubic(3.0), ["Si", "Si"], [[0, 0, 0], [0.02, 0, 0]])  # spglib fails
    Dataset.from_structures("q", list("abcdefg"), [*tiny_structures, noble, squashed])
    # spglib's C library prints "spglib: ssm_get_exact_positions failed." for this cell at 0.3 Å
    frac = [[0.0265, 0.9783, 0.0037], [0.507, 0.4465, 0.975], [0.5052, 0.049, 0.4962], [0.9758, 0.537, 0.5269],
            [0.5038, 0.5056, 0.494], [0.9951, 0.9932, 0.4871], [0.005, 0.4943, 0.0109], [0.5015, 0.9984, 0.0003]]
    rattled = Structure(Lattice.cubic(4.2), ["Na"] * 4 + ["Cl"] * 4, frac)
    assert symmetry_labels(rattled, symprec=0.3)[0] > 0
    assert [str(w.message) for w in recwarn] == []
    assert capfd.readouterr() == ("", "")


def test_symmetry_ignores_oxidation_states_and_magmoms():
    spinel = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert symmetry_labels(spinel) == (225, "cubic")
    decorated = spinel.copy()
    decorated.replace_species({"Fe": "Fe2+"})
    decorated.replace(0, "Fe3+")  # mixed valence would split Fe into two spglib types
    decorated.add_site_property("magmom", [5.0] + [0.0] * (len(decorated) - 1))
    assert symmetry_labels(decorated) == (225, "cubic")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_saved_files_follow_the_umask(tiny, umask, mode):
    previous = os.umask(umask)
    try:
        folder = save_dataset(tiny)
    finally:
        os.umask(previous)
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {"dataset.parquet": mode, "meta.json": mode}
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # a normal folder, not mkdtemp's 700
