"""Embedding a dataset: batched, cached by content key, nothing partial left behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Structure

from crystalrep.datasets import Dataset
from crystalrep.embed import (
    EMBEDDINGS_KIND,
    embed_dataset,
    embed_structures,
    embedding_key,
    load_embedding,
)
from crystalrep.encoders import get_encoder
from crystalrep.store import Store


@pytest.fixture(scope="module")
def tiny_dataset(tiny_structures: list[Structure]) -> Dataset:
    ids = [f"t{i}" for i in range(len(tiny_structures))]
    return Dataset.from_structures("tiny", ids, tiny_structures, properties={"x": [1.0, 2, 3, 4, 5]})


@pytest.mark.parametrize("name", ["cgcnn-random", "magpie", "soap"])
def test_cache_hit_skips_the_encoder(name: str, tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = get_encoder(name)
    calls: list[int] = []
    original = encoder.embed_dataset

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder, "embed_dataset", counting)
    seen: list[tuple[int, int]] = []
    first, meta = embed_dataset(tiny_dataset, encoder, device="cpu", batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert first.shape == (len(tiny_dataset), encoder.dim) and first.dtype == np.float32
    assert meta["cache_hit"] is False and seen[-1] == (5, 5)
    assert len(calls) == 3  # batch_size 2: rows 0-1, 2-3, 4
    again, meta2 = embed_dataset(tiny_dataset, encoder, device="cpu")
    assert len(calls) == 3 and meta2["cache_hit"] is True
    np.testing.assert_array_equal(first, again)
    embed_dataset(tiny_dataset, encoder, device="cpu", recompute=True)
    assert len(calls) == 4  # default batch: one


def test_metadata_records_provenance(tiny_dataset: Dataset) -> None:
    array, meta = embed_dataset(tiny_dataset, "cgcnn-random", device="cpu")
    enc = get_encoder("cgcnn-random")
    assert meta["encoder_id"] == "cgcnn-random" and meta["encoder_version"] == enc.version
    assert meta["encoder_fingerprint"] == enc.fingerprint
    assert meta["dataset_fingerprint"] == tiny_dataset.fingerprint and meta["dataset"] == "tiny"
    assert meta["device"] == "cpu" and meta["seconds"] >= 0 and meta["n"] == 5 and meta["dim"] == 128
    assert {"numpy", "torch", "pymatgen"} <= set(meta["libraries"])
    assert meta["key"] == embedding_key(tiny_dataset, enc)
    stored = load_embedding(tiny_dataset, "cgcnn-random")
    assert stored is not None and np.array_equal(stored[0], array)
    assert load_embedding(tiny_dataset, "magpie") is None


def test_magpie_meta_lists_imputed_columns() -> None:
    from pymatgen.core import Lattice

    noble = Structure(Lattice.cubic(5.0), ["He", "Ar"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    ds = Dataset.from_structures("noble", ["he"], [noble])
    array, meta = embed_dataset(ds, "magpie")
    assert np.isfinite(array).all()
    assert "MagpieData mean Electronegativity" in meta["encoder_run"]["imputed_columns"]


def test_interrupted_run_leaves_no_artifact(tiny_dataset: Dataset) -> None:
    def stop(done: int, total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_dataset(tiny_dataset, "soap", batch_size=1, progress=stop)
    store = Store()
    assert load_embedding(tiny_dataset, "soap") is None
    folder = store.root / EMBEDDINGS_KIND
    assert not folder.exists() or not any(folder.rglob("*"))
    array, meta = embed_dataset(tiny_dataset, "soap")  # the next run starts clean
    assert meta["cache_hit"] is False and array.shape[0] == len(tiny_dataset)


@pytest.mark.parametrize("name", ["cgcnn-random", "magpie", "soap"])
def test_uploads_embed_like_dataset_rows(name: str, tiny_dataset: Dataset, tiny_structures: list[Structure]) -> None:
    rows, _ = embed_dataset(tiny_dataset, name, device="cpu")
    query = embed_structures(tiny_structures[1:3], name, device="cpu")
    np.testing.assert_allclose(query, rows[1:3], rtol=1e-5, atol=1e-6)
    assert embed_structures([], name).shape == (0, rows.shape[1])


def test_keys_differ_by_encoder_and_dataset(tiny_dataset: Dataset) -> None:
    keys = {embedding_key(tiny_dataset, n) for n in ("cgcnn-random", "magpie", "soap")}
    keys.add(embedding_key(tiny_dataset.subset([0, 1]), "magpie"))
    assert len(keys) == 4


def test_bad_inputs(tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="valid encoders"):
        embed_dataset(tiny_dataset, "nope")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        embed_dataset(tiny_dataset, "cgcnn-random", device="cuda")
    with pytest.raises(ValueError, match="Batch size"):
        embed_dataset(tiny_dataset, "magpie", batch_size=0)


@pytest.mark.parametrize(("name", "n", "inside"), [("cgcnn-random", 1, 1), ("cgcnn-random", 8, 1),
                                                   ("cgcnn-random", 9, 2), ("magpie", 1, 2)])
def test_small_torch_queries_run_on_one_thread(name: str, n: int, inside: int, tiny_structures: list[Structure],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = get_encoder(name)
    seen: list[int] = []

    def recording(structures: list[Structure], **kwargs: object) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return np.zeros((len(structures), encoder.dim), dtype=np.float32)

    monkeypatch.setattr(encoder, "embed_structures", recording)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        embed_structures((tiny_structures * 2)[:n], encoder, device="cpu")
        assert seen == [inside] and torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(previous)


def test_thread_count_is_restored_when_the_encoder_fails(tiny_structures: list[Structure],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = get_encoder("cgcnn-random")

    def failing(structures: list[Structure], **kwargs: object) -> np.ndarray:
        raise RuntimeError("boom")

    monkeypatch.setattr(encoder, "embed_structures", failing)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            embed_structures(tiny_structures[:1], encoder, device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_a_wrong_shaped_cache_hit_is_recomputed(tiny_dataset: Dataset, tmp_path) -> None:
    store = Store(tmp_path)
    key = embedding_key(tiny_dataset, "magpie")
    store.save_array(EMBEDDINGS_KIND, key, np.zeros((7, 3), np.float32), {})  # verifies, but is not this embedding
    X, meta = embed_dataset(tiny_dataset, "magpie", store=store)
    assert X.shape[0] == len(tiny_dataset) and meta["cache_hit"] is False
    assert store.load_array(EMBEDDINGS_KIND, key)[0].shape == X.shape


def test_building_cgcnn_leaves_no_generated_file_in_the_temp_folder(tmp_path) -> None:
    """torch-geometric writes a ``*_propagate_*.py`` per process into the temp folder; it is removed."""
    import os
    import subprocess
    import sys

    script = ("from crystalrep.encoders.cgcnn import build_cgcnn\n"
              "from crystalrep.embed import embed_structures\n"
              "from pymatgen.core import Lattice, Structure\n"
              "build_cgcnn()\n"
              "print(embed_structures([Structure(Lattice.cubic(3.0), ['Fe'], [[0, 0, 0]])], 'cgcnn-random').shape)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(1, 128)"
    assert [p.name for p in tmp_path.iterdir() if "propagate" in p.name] == []
