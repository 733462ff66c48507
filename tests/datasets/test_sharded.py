"""Datasets stored as shards: written by ShardWriter, read lazily, verified shard by shard."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from crystalrep.datasets import (
    Dataset,
    DatasetError,
    PropertyInfo,
    ShardWriter,
    dataset_dir,
    dataset_exists,
    load_dataset,
    save_dataset,
    save_in_shards,
)
from crystalrep.datasets.sharded import ShardSource


@pytest.fixture()
def tiny(tiny_structures):
    structures = tiny_structures * 3  # 15 rows
    n = len(structures)
    return Dataset.from_structures(
        "tiny", [f"s{i}" for i in range(n)], structures,
        properties={"energy": np.linspace(-1, 1, n), "kind": (["a", "b", None] * 5)[:n]},
        property_info={"energy": PropertyInfo("energy", unit="eV/atom")}, meta={"source": "unit test"})


def _shard_files(name: str) -> list[str]:
    return sorted(p.name for p in dataset_dir(name).glob("shard-*.parquet"))


def test_a_sharded_dataset_reads_back_equal_and_lazily(tiny, monkeypatch):
    save_in_shards(tiny, rows=4)
    assert len(_shard_files("tiny")) == 4
    reads: list[int] = []
    original = ShardSource.shard
    monkeypatch.setattr(ShardSource, "shard", lambda self, k: (reads.append(k), original(self, k))[1])
    back = load_dataset("tiny")
    assert reads == [] and len(back) == 15 and back.fingerprint == tiny.fingerprint
    assert back.properties == tiny.properties and back.ids == tiny.ids
    assert np.allclose(back.table["energy"], tiny.table["energy"])
    assert back.table["kind"].tolist() == ["a", "b", None] * 5
    assert back.shard_bounds() == [(0, 4), (4, 8), (8, 12), (12, 15)]
    part = back.subset([13, 1, 14])  # rows of shards 3 and 0 only
    assert sorted(set(reads)) == [0, 3]
    assert part.ids == ["s13", "s1", "s14"] and part.fingerprint == tiny.subset([13, 1, 14]).fingerprint
    assert back.structure(-1) == tiny.structure(14)
    assert back.describe()["n_elements"] == tiny.describe()["n_elements"] and set(reads) <= {0, 3}
    blocks = list(back.iter_shards())
    assert [(o, len(b)) for o, b in blocks] == [(0, 4), (4, 4), (8, 4), (12, 3)]
    assert np.array_equal(back.numbers, tiny.numbers)  # the whole arrays load (and are checked) on first use
    assert back.parquet_bytes() == tiny.parquet_bytes()


def test_a_tampered_shard_is_refused_in_one_sentence(tiny):
    save_in_shards(tiny, rows=5)
    victim = dataset_dir("tiny") / _shard_files("tiny")[1]
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    victim.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match=r"^dataset 'tiny' is broken: shard-[0-9a-f]{16}\.parquet does not match the sha256 in meta\.json\.$"):
        load_dataset("tiny")


def test_a_shard_changed_after_opening_is_refused_when_read(tiny):
    save_in_shards(tiny, rows=5)
    ds = load_dataset("tiny")
    victim = dataset_dir("tiny") / ds.__dict__["_shards"].shards[2].file
    victim.write_bytes(victim.read_bytes()[:-3])
    assert ds.structure(0) == tiny.structure(0)
    with pytest.raises(DatasetError, match="does not match the sha256"):
        ds.structure(12)


def test_shard_counts_must_add_up(tiny):
    save_in_shards(tiny, rows=5)
    meta_path = dataset_dir("tiny") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["shards"][0]["rows"] += 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="shard counts do not add up"):
        load_dataset("tiny")


def test_a_writer_left_without_commit_keeps_the_old_version(tiny):
    save_dataset(tiny.subset([0, 1]))
    before = sorted(p.name for p in dataset_dir("tiny").iterdir())
    with pytest.raises(RuntimeError, match="killed"), ShardWriter("tiny", overwrite=True) as writer:
        writer.add(tiny.parquet_bytes(), rows=len(tiny), sites=len(tiny.numbers))
        raise RuntimeError("killed")
    assert sorted(p.name for p in dataset_dir("tiny").iterdir()) == before
    assert len(load_dataset("tiny")) == 2
    with pytest.raises(DatasetError, match="already exists"), ShardWriter("tiny"):
        pass
    with pytest.raises(DatasetError, match="reserved"), ShardWriter("Default"):
        pass


def test_a_new_name_without_commit_leaves_nothing(tiny):
    with pytest.raises(RuntimeError), ShardWriter("fresh") as writer:
        writer.add(tiny.parquet_bytes(), rows=len(tiny), sites=len(tiny.numbers))
        raise RuntimeError("killed")
    assert not dataset_exists("fresh") and not dataset_dir("fresh").exists()


def test_overwriting_shards_with_a_table_and_back_collects_old_files(tiny):
    save_in_shards(tiny, rows=4)
    save_dataset(tiny.subset([0, 1, 2]), overwrite=True)
    assert _shard_files("tiny") == [] and len(load_dataset("tiny")) == 3
    save_in_shards(tiny, rows=8, overwrite=True)
    names = sorted(p.name for p in dataset_dir("tiny").iterdir())
    assert len(_shard_files("tiny")) == 2 and names == sorted([*_shard_files("tiny"), "meta.json"])


def test_a_lazy_dataset_pickles_and_an_in_memory_one_walks_in_blocks(tiny):
    save_in_shards(tiny, rows=4)
    back = pickle.loads(pickle.dumps(load_dataset("tiny")))
    assert back.structure(9) == tiny.structure(9) and back.fingerprint == tiny.fingerprint
    assert [(o, len(b)) for o, b in tiny.iter_shards()] == [(0, 15)]
