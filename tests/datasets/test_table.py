from __future__ import annotations

import json
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


@pytest.mark.parametrize("name", ["", "../x", "a/b", "x" * 65, "default", "DEFAULT", "Default", "abc\n", "default\n"])
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
    with pytest.raises(DatasetError, match="does not match the sha256"):
        Dataset.load(tmp_path / "t")


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_overwrite_failing_midway_leaves_the_old_dataset_intact(tiny, monkeypatch):
    save_dataset(tiny)
    before = _files(dataset_dir("tiny"))
    smaller = tiny.subset([0, 1])

    def disk_full(path, obj):
        raise OSError("disk full")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(datasets.registry, "atomic_write_json", disk_full)  # after the new parquet is written
        save_dataset(smaller, overwrite=True)
    assert load_dataset("tiny").fingerprint == tiny.fingerprint
    assert [p.name for p in datasets_home().iterdir() if not p.name.startswith(".")] == ["tiny"]
    save_dataset(smaller, overwrite=True)
    assert len(load_dataset("tiny")) == 2
    after = _files(dataset_dir("tiny"))  # the old version and the failed attempt's table are gone
    assert len(before) == len(after) == 2 and "meta.json" in after and set(after) != set(before)


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
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert sorted(modes) == [next(n for n in modes if n.endswith(".parquet")), "meta.json"]
    assert set(modes.values()) == {mode}
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # a normal folder, not mkdtemp's 700


def test_every_single_byte_flip_of_a_saved_table_is_refused(tiny):
    folder = save_dataset(tiny)
    parquet = next(folder.glob("dataset-*.parquet"))
    good = parquet.read_bytes()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(good), size=40, replace=False):
        bad = bytearray(good)
        bad[pos] ^= 1 << int(rng.integers(8))
        parquet.write_bytes(bytes(bad))
        with pytest.raises(DatasetError, match="does not match the sha256"):
            load_dataset("tiny")
    parquet.write_bytes(good)
    assert load_dataset("tiny").fingerprint == tiny.fingerprint


@pytest.mark.parametrize(("edit", "message"), [
    ({"fingerprint": "0" * 64}, "does not match the counts and fingerprint"),
    ({"n_structures": 4}, "does not match the counts and fingerprint"),
    ({"n_structures": "5"}, "n_structures is not a count"),
    ({"fingerprint": 7}, "fingerprint is not a sha256"),
    ({"properties": {"energy": {"kind": 3}}}, "property 'energy' is malformed"),
    ({"properties": []}, "properties are not a JSON object"),
    ({"parquet": "../../etc/passwd"}, "parquet file name is malformed"),
    ({"format_version": 9}, "format_version is 9"),
])
def test_edited_meta_is_refused(tiny, edit, message):
    folder = save_dataset(tiny)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, **edit}))
    with pytest.raises(DatasetError, match=message):
        load_dataset("tiny")


@pytest.mark.parametrize("content", ["[]", "{}", "3", "garbage", "[" * 100_000, '{"format_version": 1}'])
def test_a_meta_of_the_wrong_shape_breaks_only_its_dataset(tiny, content, capsys):
    from crystalrep.cli.main import main

    save_dataset(tiny)
    other = tiny.subset([0, 1], name="other")
    save_dataset(other)
    (dataset_dir("tiny") / "meta.json").write_text(content)
    with pytest.raises(DatasetError, match="^dataset 'tiny' (is broken|cannot be read)"):
        load_dataset("tiny")
    assert len(load_dataset("other")) == 2
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["other"]["n_structures"] == 2 and "error" not in rows["other"]
    assert rows["tiny"]["n_structures"] is None and rows["tiny"]["error"].startswith("dataset 'tiny'")
    capsys.readouterr()
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "other" in out and "broken" in out.lower()


def test_plain_and_pre_sha_layouts_still_load_and_are_upgraded_on_overwrite(tiny):
    folder = tiny.save(datasets_home() / "tiny")  # the plain layout of the built-in dataset
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["parquet"] == "dataset.parquet" and len(meta["parquet_sha256"]) == 64
    for key in ("parquet", "parquet_sha256"):  # as written before the sha256 was recorded
        meta.pop(key)
    (folder / "meta.json").write_text(json.dumps(meta))
    assert load_dataset("tiny").fingerprint == tiny.fingerprint
    save_dataset(tiny.subset([0, 1]), overwrite=True)
    assert [p.name for p in folder.iterdir() if p.suffix == ".parquet"] != ["dataset.parquet"]
    assert len(load_dataset("tiny")) == 2


def test_a_dataset_with_a_lattice_property_stays_readable(tiny):
    """Imports before names were checked could store a property called ``lattice``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tiny.save(datasets_home() / "tiny")
    tab = pq.read_table(folder / "dataset.parquet")
    tab = pa.Table.from_arrays([*tab.columns[:-3], pa.array(["x"] * len(tiny)), *tab.columns[-3:]],
                               names=[*tab.schema.names[:-3], "lattice", *datasets.STORAGE_COLUMNS])
    pq.write_table(tab, folder / "dataset.parquet")
    meta = json.loads((folder / "meta.json").read_text())
    meta.pop("parquet_sha256")
    meta["properties"]["lattice"] = {"name": "lattice", "unit": "", "description": "", "kind": "categorical"}
    (folder / "meta.json").write_text(json.dumps(meta))
    ds = load_dataset("tiny")
    assert ds.fingerprint == tiny.fingerprint and ds.table["source_lattice"].tolist() == ["x"] * len(tiny)
    assert "source_lattice" in ds.properties and "lattice" not in ds.properties
    with pytest.raises(DatasetError, match="clashes with a built-in column"):
        Dataset.from_structures("x", ["a"], [tiny.structure(0)], properties={"frac": [1.0]})


_WRITER = """
import sys
from crystalrep.datasets import load_dataset, save_dataset
a = load_dataset("race")
b = a.subset([0, 1])
b.meta = {**b.meta, "version": "b"}
for k in range(int(sys.argv[1])):
    save_dataset(b if k % 2 == 0 else a, overwrite=True)
print("done")
"""


@pytest.mark.slow
def test_readers_see_one_version_whole_while_another_process_overwrites(tiny):
    import subprocess
    import sys

    a = tiny.subset(range(len(tiny)), name="race")
    a.meta = {**a.meta, "version": "a"}
    save_dataset(a)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, "20"], stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        while writer.poll() is None:
            ds = load_dataset("race")  # a mix would fail its fingerprint check and raise
            seen.append((ds.meta["version"], len(ds)))
    finally:
        out, _ = writer.communicate(timeout=120)
    assert out.strip() == "done" and writer.returncode == 0
    assert set(seen) == {("a", 5), ("b", 2)}, seen  # both versions were read, each whole
    print(f"{len(seen)} loads, {sum(v == 'b' for v, _ in seen)} of version b")
    assert [p.name for p in dataset_dir("race").iterdir() if p.suffix == ".parquet"] == \
        [json.loads((dataset_dir("race") / "meta.json").read_text())["parquet"]]


def test_a_dataset_folder_leading_out_of_the_home_is_refused(tiny, tmp_path):
    outside = tiny.save(tmp_path / "elsewhere")
    datasets_home().mkdir(parents=True)
    (datasets_home() / "tiny").symlink_to(outside)
    for act in (lambda: load_dataset("tiny"), lambda: delete_dataset("tiny"), lambda: save_dataset(tiny, overwrite=True)):
        with pytest.raises(DatasetError, match="leads outside"):
            act()
    assert "tiny" not in [d["name"] for d in list_datasets()]
    assert sorted(p.name for p in outside.iterdir()) == ["dataset.parquet", "meta.json"]  # untouched
