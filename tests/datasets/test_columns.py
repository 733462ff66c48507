"""One-table datasets opened lazily: the fingerprint remembered per table, structure columns decoded on use."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from crystalrep.datasets import (
    Dataset,
    DatasetError,
    PropertyInfo,
    dataset_dir,
    load_dataset,
    save_dataset,
)
from crystalrep.datasets.columns import FINGERPRINT_KIND, TableColumns, recall_fingerprint
from crystalrep.store import Store


@pytest.fixture()
def tiny(tiny_structures):
    n = len(tiny_structures)
    return Dataset.from_structures("tiny", [f"s{i}" for i in range(n)], tiny_structures,
                                   properties={"energy": np.linspace(-1, 1, n)},
                                   property_info={"energy": PropertyInfo("energy", unit="eV")})


def _decoded(monkeypatch) -> list[str]:
    seen: list[str] = []
    original = TableColumns.array
    monkeypatch.setattr(TableColumns, "array", lambda self, attr: (seen.append(attr), original(self, attr))[1])
    return seen


def _sha(name: str) -> str:
    return json.loads((dataset_dir(name) / "meta.json").read_text())["parquet_sha256"]


def test_a_saved_table_loads_without_decoding_its_structures(tiny, monkeypatch):
    save_dataset(tiny)
    assert recall_fingerprint({"parquet_sha256": _sha("tiny")}) == tiny.fingerprint  # remembered when saved
    seen = _decoded(monkeypatch)
    back = load_dataset("tiny")
    assert seen == [] and back.fingerprint == tiny.fingerprint and back.ids == tiny.ids
    assert back.describe() == tiny.describe() and seen == []
    assert np.array_equal(back.numbers, tiny.numbers) and seen == ["numbers"]  # one column at a time
    assert back.structure(3) == tiny.structure(3) and seen == ["numbers"]  # one row: its row group only
    assert np.array_equal(back.lattices, tiny.lattices) and np.array_equal(back.frac_coords, tiny.frac_coords)
    assert sorted(seen) == ["frac_coords", "lattices", "numbers"] and "_columns" not in back.__dict__
    assert np.array_equal(back.offsets, tiny.offsets)
    assert back.parquet_bytes() == tiny.parquet_bytes()


def test_a_lazy_dataset_subsets_and_pickles_like_a_loaded_one(tiny):
    save_dataset(tiny)
    back = load_dataset("tiny")
    again = pickle.loads(pickle.dumps(back))
    assert again.subset([4, 0]).fingerprint == tiny.subset([4, 0]).fingerprint
    assert [s for _, b in back.iter_shards() for s in b.structures()] == tiny.structures()


def test_without_a_remembered_fingerprint_the_table_is_checked_whole_then_remembered(tiny, monkeypatch):
    save_dataset(tiny)
    shutil.rmtree(Store().root / FINGERPRINT_KIND)
    seen = _decoded(monkeypatch)
    first = load_dataset("tiny")
    assert "_columns" not in first.__dict__ and first.fingerprint == tiny.fingerprint  # decoded and hashed
    assert recall_fingerprint({"parquet_sha256": _sha("tiny")}) == tiny.fingerprint
    assert "_columns" in load_dataset("tiny").__dict__ and seen == []


def test_a_wrong_remembered_fingerprint_only_costs_a_full_check(tiny):
    save_dataset(tiny)
    key = Store().keys(FINGERPRINT_KIND)[0]
    Store().save_files(FINGERPRINT_KIND, key, {"result.json": b'{"fingerprint": "' + b"0" * 64 + b'"}'}, replace=True)
    back = load_dataset("tiny")
    assert "_columns" not in back.__dict__ and back.fingerprint == tiny.fingerprint
    assert recall_fingerprint({"parquet_sha256": _sha("tiny")}) == tiny.fingerprint  # corrected


def test_an_edited_fingerprint_or_count_is_still_refused(tiny):
    folder = save_dataset(tiny)
    meta = json.loads((folder / "meta.json").read_text())
    for edit in ({"fingerprint": "0" * 64}, {"n_sites": meta["n_sites"] + 1}, {"n_structures": 4}):
        (folder / "meta.json").write_text(json.dumps({**meta, **edit}))
        with pytest.raises(DatasetError, match="does not match the counts and fingerprint"):
            load_dataset("tiny")


def test_a_structure_column_that_disagrees_with_nsites_is_refused(tiny, monkeypatch):
    save_dataset(tiny)
    back = load_dataset("tiny")
    columns = back.__dict__["_columns"]
    monkeypatch.setitem(back.__dict__, "_columns",
                        TableColumns(columns.name, columns.blob, columns.offsets + np.arange(len(columns.offsets)),
                                     columns.n_elements))
    with pytest.raises(DatasetError, match="numbers column does not match its nsites"):
        _ = back.numbers


def test_a_sharded_dataset_hashes_its_structures_once(tiny, monkeypatch):
    from crystalrep.datasets import save_in_shards, table

    save_in_shards(tiny, rows=2)
    assert np.array_equal(load_dataset("tiny").numbers, tiny.numbers)  # checked in full, then remembered

    def hashed(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(table, "fingerprint_of", hashed)
    back = load_dataset("tiny")
    assert np.array_equal(back.frac_coords, tiny.frac_coords) and back.structure(4) == tiny.structure(4)
    folder = dataset_dir("tiny")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "fingerprint": "1" * 64}))
    with pytest.raises(AssertionError, match="hashed again"):  # another fingerprint is checked in full
        _ = load_dataset("tiny").numbers


def test_rows_are_read_from_their_row_groups(tiny_structures, monkeypatch):
    import pyarrow.parquet as pq

    from crystalrep.datasets import parquet

    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 3)
    structures = tiny_structures * 3  # 15 rows in 5 row groups
    ds = Dataset.from_structures("groups", [f"g{i}" for i in range(15)], structures)
    save_dataset(ds)
    groups: list[int] = []
    original = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", lambda self, g, **kw: (groups.append(g), original(self, g, **kw))[1])
    seen = _decoded(monkeypatch)
    back = load_dataset("groups")
    part = back.subset([13, 1, 14, 2])
    assert sorted(set(groups)) == [0, 4] and seen == []
    assert part.fingerprint == ds.subset([13, 1, 14, 2]).fingerprint
    assert back.structure(-8) == ds.structure(7) and groups[-1] == 2
    assert [b.fingerprint for _, b in back.iter_shards()] == [b.fingerprint for _, b in ds.iter_shards()]
