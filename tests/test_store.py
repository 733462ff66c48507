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



class _Counter:
    """A computation that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_memo_json_computes_once_then_reads(tmp_path):
    store = Store(tmp_path)
    compute = _Counter({"r2": np.float64(0.5), "folds": (1, 2), "missing": float("nan")})
    first, hit = store.memo_json("lecture", {"what": "probe", "seed": 0}, compute)
    assert not hit and compute.calls == 1
    assert first["r2"] == 0.5 and first["folds"] == [1, 2]  # the stored form, on a miss too
    again, hit = store.memo_json("lecture", {"seed": 0, "what": "probe"}, compute)  # same inputs, any order
    assert hit and compute.calls == 1 and again["folds"] == [1, 2] and np.isnan(again["missing"])
    assert store.keys("lecture") == [content_key({"what": "probe", "seed": 0})]
    assert store.memo_json("lecture", content_key({"what": "probe", "seed": 0}), compute)[1]  # a key string too


@pytest.mark.parametrize("damage", ["edit", "unparsable", "rejected"])
def test_memo_json_recomputes_what_it_cannot_trust(tmp_path, damage):
    store = Store(tmp_path)
    compute = _Counter({"n": 3})
    store.memo_json("lecture", "k", compute)
    folder = store.path("lecture", "k")
    if damage == "edit":  # the manifest no longer matches
        (folder / "result.json").write_text('{"n": 4}')
    elif damage == "unparsable":  # verified, but not JSON: replaced, not served
        store.save_files("lecture", "k", {"result.json": b"{not json"}, replace=True)
    accept = (lambda v: v.get("n") == 2) if damage == "rejected" else None
    compute.value = {"n": 2}
    value, hit = store.memo_json("lecture", "k", compute, accept=accept)
    assert not hit and value == {"n": 2} and compute.calls == 2
    assert store.memo_json("lecture", "k", compute, accept=accept) == ({"n": 2}, True)


def test_memo_array_layout_accept_and_replace(tmp_path):
    store = Store(tmp_path)
    compute = _Counter((np.ones((4, 2), np.float32), {"n": 4}))
    array, meta, hit = store.memo_array("projections", "k", compute)
    assert not hit and meta == {"n": 4} and compute.calls == 1
    np.testing.assert_array_equal(store.load_array("projections", "k")[0], array)  # save_array's layout
    _, _, hit = store.memo_array("projections", "k", compute, accept=lambda a, m: a.shape == (4, 2))
    assert hit and compute.calls == 1
    compute.value = (np.zeros((5, 2), np.float32), {"n": 5})
    array, meta, hit = store.memo_array("projections", "k", compute, accept=lambda a, m: a.shape == (5, 2))
    assert not hit and array.shape == (5, 2) and compute.calls == 2
    assert store.load_array("projections", "k")[1] == {"n": 5}  # the rejected artifact was replaced
