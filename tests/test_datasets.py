from __future__ import annotations

import numpy as np
import pytest

from crystalrep.datasets import (
    Dataset,
    DatasetError,
    PropertyInfo,
    delete_dataset,
    list_datasets,
    load_dataset,
    save_dataset,
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
