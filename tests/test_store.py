from __future__ import annotations

import json

import numpy as np
import pytest

from crystalrep.store import (
    Store,
    atomic_write_bytes,
    atomic_write_json,
    content_key,
    crystalrep_home,
)


def test_home_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTALREP_HOME", str(tmp_path / "h"))
    assert crystalrep_home() == tmp_path / "h"


def test_content_key_is_stable_and_order_free():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert len(content_key("x")) == 16


def test_save_load_roundtrip(tmp_path):
    store = Store(tmp_path)
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.save_array("embeddings", "k1", arr, {"encoder": "x", "n": np.int64(3)})
    got = store.load_array("embeddings", "k1")
    assert got is not None
    np.testing.assert_array_equal(got[0], arr)
    assert got[0].dtype == np.float32 and got[1] == {"encoder": "x", "n": 3}
    assert store.keys("embeddings") == ["k1"]


def test_missing_artifact_is_none(tmp_path):
    assert Store(tmp_path).load_array("embeddings", "nope") is None


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete"])
def test_damaged_artifact_is_detected_then_rebuilt(tmp_path, damage):
    store = Store(tmp_path)
    arr = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    folder = store.save_array("embeddings", "k", arr, {})
    npy = folder / "array.npy"
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:100])
    elif damage == "edit":
        raw = bytearray(npy.read_bytes())
        raw[-1] ^= 0xFF
        npy.write_bytes(bytes(raw))
    else:
        npy.unlink()
    assert store.load_array("embeddings", "k") is None
    store.save_array("embeddings", "k", arr, {})
    np.testing.assert_array_equal(store.load_array("embeddings", "k")[0], arr)


def test_atomic_write_leaves_no_temp_on_failure(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    atomic_write_bytes(tmp_path / "sub" / "b.bin", b"ok")
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"ok"


def test_invalid_address_rejected(tmp_path):
    with pytest.raises(ValueError):
        Store(tmp_path).path("embeddings", "../escape")


@pytest.mark.parametrize("manifest", ["{}", "[]", "garbage", '{"array.npy": 5}', '{"../x": "' + "0" * 64 + '"}',
                                      '{"meta.json": "' + "0" * 64 + '"}'])
def test_a_manifest_that_verifies_nothing_is_not_served(tmp_path, manifest):
    store = Store(tmp_path)
    folder = store.save_array("embeddings", "k", np.ones((3, 2), np.float32), {"n": 3})
    raw = bytearray((folder / "array.npy").read_bytes())
    raw[-1] ^= 0x40  # the array is damaged too: an empty manifest must not let it through
    (folder / "array.npy").write_bytes(bytes(raw))
    (folder / "manifest.json").write_text(manifest)
    assert store.load_array("embeddings", "k") is None
    assert store.verified("embeddings", "k", required=("array.npy",)) is None


def test_the_first_complete_artifact_stays_unless_replaced(tmp_path):
    store = Store(tmp_path)
    store.save_array("embeddings", "k", np.zeros(2, np.float32), {"run": 1})
    store.save_array("embeddings", "k", np.ones(2, np.float32), {"run": 2})  # another process, same key
    assert store.load_array("embeddings", "k")[1] == {"run": 1}
    store.save_array("embeddings", "k", np.ones(2, np.float32), {"run": 3}, replace=True)
    assert store.load_array("embeddings", "k")[1] == {"run": 3}
    assert [p.name for p in (tmp_path / "embeddings").iterdir()] == ["k"]  # no temp folder left


def test_hidden_temp_folders_are_not_keys_and_stale_ones_are_removed(tmp_path):
    import os

    store = Store(tmp_path)
    dead = tmp_path / "embeddings" / ".k.0123456789ab.tmp"
    dead.mkdir(parents=True)
    (dead / "array.npy").write_bytes(b"half")
    assert store.keys("embeddings") == []
    old = dead.stat().st_mtime - 2 * 3600
    os.utime(dead, (old, old))
    store.save_array("embeddings", "k", np.ones(2, np.float32), {})
    assert sorted(p.name for p in (tmp_path / "embeddings").iterdir()) == ["k"]

