"""Shard plans, atom-sized batches, merged run facts and checksummed shard files."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.datasets import Dataset
from crystalrep.embed import embed_dataset
from crystalrep.embed.files import ShardFolder
from crystalrep.embed.shards import (
    Shard,
    atom_batches,
    dataset_shards,
    embed_shard,
    merge_run_info,
    plan_shards,
)
from crystalrep.encoders import get_encoder
from crystalrep.store import Store


@pytest.fixture(scope="module")
def tiny_dataset(tiny_structures: list[Structure]) -> Dataset:
    structures = tiny_structures * 3
    return Dataset.from_structures("tiny15", [f"t{i}" for i in range(len(structures))], structures)


def test_plan_covers_every_row_once_inside_the_blocks(tiny_dataset: Dataset) -> None:
    assert plan_shards([(0, 23)], 10) == [Shard(0, 10), Shard(10, 20), Shard(20, 23)]
    assert plan_shards([(0, 5), (5, 12)], 4) == [Shard(0, 4), Shard(4, 5), Shard(5, 9), Shard(9, 12)]
    assert plan_shards([], 10) == [] and plan_shards([(0, 5)], 10) == [Shard(0, 5)]
    with pytest.raises(ValueError, match="Shard rows"):
        plan_shards([(0, 5)], 0)
    assert dataset_shards(tiny_dataset) == [Shard(a, b) for a, b in tiny_dataset.shard_bounds()]
    assert dataset_shards(tiny_dataset, 4)[-1] == Shard(12, 15)


def test_batches_respect_atom_and_crystal_budgets() -> None:
    counts = np.array([2, 1, 4, 5, 4, 40, 1, 1])
    batches = list(atom_batches(counts, batch_atoms=8, batch_size=3))
    assert batches == [(0, 3), (3, 4), (4, 5), (5, 6), (6, 8)]  # 40 atoms: a batch of its own
    for a, b in batches:
        assert b - a <= 3 and (counts[a:b].sum() <= 8 or b - a == 1)
    assert list(atom_batches(counts, batch_atoms=1000, batch_size=64)) == [(0, 8)]
    with pytest.raises(ValueError, match="Batch size"):
        list(atom_batches(counts, batch_atoms=8, batch_size=0))
    with pytest.raises(ValueError, match="Batch atoms"):
        list(atom_batches(counts, batch_atoms=0, batch_size=4))


def test_run_facts_merge_rows_lists_and_agreeing_scalars() -> None:
    merged = merge_run_info([(0, {"device": "cpu", "stand_in_rows": [1], "imputed_columns": ["a"], "distinct": 3}),
                             (10, {"device": "cpu", "stand_in_rows": [0, 2], "imputed_columns": ["a", "b"], "distinct": 5})])
    assert merged == {"device": "cpu", "stand_in_rows": [1, 10, 12], "imputed_columns": ["a", "b"]}


def test_shard_embedding_equals_the_encoder_on_the_whole_dataset(tiny_dataset: Dataset) -> None:
    encoder = get_encoder("cgcnn-random")
    whole = encoder.embed_dataset(tiny_dataset, device="cpu")
    part, info = embed_shard(encoder, tiny_dataset, device="cpu", batch_atoms=6, batch_size=64)
    np.testing.assert_allclose(part, whole, rtol=1e-5, atol=1e-6)
    assert info["device"] == "cpu" and info["seconds"] >= 0


def test_shard_files_are_checksummed(tmp_path, tiny_dataset: Dataset) -> None:
    folder = ShardFolder(Store(tmp_path), "k")
    shard, array = Shard(0, 3), np.arange(6, dtype=np.float32).reshape(3, 2)
    assert folder.load(shard, 2) is None
    folder.save(shard, array, {"device": "cpu"})
    loaded = folder.load(shard, 2)
    assert loaded is not None and np.array_equal(loaded[0], array) and loaded[1] == {"device": "cpu"}
    assert folder.load(shard, 3) is None  # another encoder's width
    npy = folder.path / f"{shard.name}.npy"
    npy.write_bytes(npy.read_bytes()[:-4] + b"\0\0\0\1")
    assert folder.load(shard, 2) is None  # flipped bytes: recomputed, never read
    assert folder.finished() == [shard.name]
    folder.clear()
    assert not folder.path.exists()


def test_sharded_run_equals_one_shard_and_cleans_up(tiny_dataset: Dataset, tmp_path) -> None:
    # batches of 4 rows either way: the same batches give the same bits
    one, meta_one = embed_dataset(tiny_dataset, "cgcnn-random", device="cpu", store=Store(tmp_path / "a"), batch_size=4)
    many, meta = embed_dataset(tiny_dataset, "cgcnn-random", device="cpu", store=Store(tmp_path / "b"),
                               batch_size=4, shard_rows=4)
    np.testing.assert_array_equal(one, many)
    assert (meta_one["shards"], meta["shards"], meta["shards_resumed"]) == (1, 4, 0)
    assert meta["engine"] == "local" and meta["batch_size"] == 4
    assert not ShardFolder(Store(tmp_path / "b"), meta["key"]).path.exists()


def test_finished_shards_are_reused_and_a_damaged_one_recomputed(tiny_dataset: Dataset, tmp_path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path)
    encoder = get_encoder("cgcnn-random")
    expected, _ = embed_dataset(tiny_dataset, encoder, device="cpu", store=Store(tmp_path / "fresh"), shard_rows=4)
    seen: list[int] = []

    def stop_after_three(done: int, total: int) -> None:
        seen.append(done)
        if done >= 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_dataset(tiny_dataset, encoder, device="cpu", store=store, shard_rows=4, progress=stop_after_three)
    from crystalrep.embed import embedding_key

    folder = ShardFolder(store, embedding_key(tiny_dataset, encoder))
    assert len(folder.finished()) == 3
    (folder.path / f"{Shard(4, 8).name}.npy").write_bytes(b"garbage")
    X, meta = embed_dataset(tiny_dataset, encoder, device="cpu", store=store, shard_rows=4)
    assert meta["shards_resumed"] == 2 and meta["shards"] == 4
    np.testing.assert_array_equal(X, expected)
