"""Checkpoints: plain data in, strict weights out, clear errors for everything else."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from crystalrep.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    checkpoint_id,
    checkpoints_dir,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    save_to_store,
    to_plain,
)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    width: int = 4
    rate: float = 0.5
    where: Path = Path("/tmp/x")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))


def test_round_trip_is_strict_and_exact(tmp_path: Path) -> None:
    model = _model()
    meta = {"epochs": np.int64(3), "loss": np.float32(0.25), "tags": ("a", "b"), "path": tmp_path}
    path = tmp_path / "m.pt"
    ckpt_id = save_checkpoint(path, kind="toy", config=_Cfg(), state_dict=model.state_dict(), meta=meta)
    assert ckpt_id == hashlib.sha256(path.read_bytes()).hexdigest()[:12] == checkpoint_id(path)
    ckpt = load_checkpoint(path, kind="toy")
    assert ckpt.id == ckpt_id and ckpt.format_version == FORMAT_VERSION and ckpt.path == path
    assert ckpt.config == {"width": 4, "rate": 0.5, "where": "/tmp/x"}
    assert ckpt.meta == {"epochs": 3, "loss": 0.25, "tags": ["a", "b"], "path": str(tmp_path)}
    assert type(ckpt.meta["epochs"]) is int
    fresh = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    fresh.load_state_dict(ckpt.state_dict, strict=True)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp files left behind


def test_meta_with_torch_version_loads_weights_only(tmp_path: Path) -> None:
    class Label(str):
        pass

    meta = {"torch": torch.__version__, Label("key"): Label("value"), "n": True}
    assert type(to_plain(meta)["torch"]) is str and type(next(iter(to_plain(meta)))) is str
    path = tmp_path / "v.pt"
    save_checkpoint(path, kind="toy", config={"built_with": torch.__version__}, state_dict=_model().state_dict(), meta=meta)
    ckpt = load_checkpoint(path, kind="toy")  # weights_only=True: a TorchVersion would be refused
    assert ckpt.meta == {"torch": str(torch.__version__), "key": "value", "n": True}
    assert type(ckpt.meta["torch"]) is str and ckpt.config == {"built_with": str(torch.__version__)}
    raw = torch.load(path, weights_only=True)
    assert type(raw["meta"]["torch"]) is str


def test_same_content_same_id(tmp_path: Path) -> None:
    sd = _model().state_dict()
    a = save_checkpoint(tmp_path / "a.pt", kind="toy", config={}, state_dict=sd)
    b = save_checkpoint(tmp_path / "b.pt", kind="toy", config={}, state_dict=sd)
    assert a == b


def test_nested_training_state_round_trips(tmp_path: Path) -> None:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": torch.get_rng_state()}
    save_checkpoint(tmp_path / "s.pt", kind="state", config={}, state_dict=state)
    loaded = load_checkpoint(tmp_path / "s.pt", kind="state").state_dict
    opt2 = torch.optim.AdamW(_model().parameters(), lr=1e-3)
    opt2.load_state_dict(loaded["optimizer"])
    assert torch.equal(loaded["rng"], state["rng"])


def test_wrong_kind(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m.pt", kind="toy", config={}, state_dict=_model().state_dict())
    with pytest.raises(CheckpointError, match="holds a 'toy', not a 'cgcnn'"):
        load_checkpoint(tmp_path / "m.pt", kind="cgcnn")


def test_wrong_format_version(tmp_path: Path) -> None:
    payload = {"format_version": 99, "kind": "toy", "config": {}, "state_dict": {}, "meta": {}}
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path / "m.pt")


def test_missing_keys(tmp_path: Path) -> None:
    torch.save({"weights": torch.ones(2)}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="lacks the keys"):
        load_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(path, kind="toy", config={}, state_dict=_model().state_dict())
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a zip" * 50, "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    payload = {"format_version": FORMAT_VERSION, "kind": "toy", "config": {}, "state_dict": {},
               "meta": {"obj": _Cfg()}}
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="corrupted or not a checkpoint") as refused:
        load_checkpoint(tmp_path / "m.pt")
    message = str(refused.value)  # one sentence, not torch's multi-line weights_only explanation
    assert "\n" not in message and "Python objects" in message and "weights_only" not in message


@pytest.mark.parametrize("path", ["/proc/self/mem", "/proc/self/environ", "/dev/zero", "/dev/null", "/sys/kernel/mm",
                                  "."])
def test_only_regular_files_are_read(path: str) -> None:
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    assert "\n" not in str(refused.value) and len(str(refused.value)) <= 300
    with pytest.raises(CheckpointError):
        find_checkpoint(path)


def test_a_symlink_out_of_the_store_is_not_listed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.pt"
    save_checkpoint(outside, kind="toy", config={}, state_dict=_model().state_dict())
    checkpoints_dir().mkdir(parents=True)
    (checkpoints_dir() / "link.pt").symlink_to(outside)
    (checkpoints_dir() / "zero.pt").symlink_to("/dev/zero")
    assert list_checkpoints() == []
    with pytest.raises(CheckpointError, match="no checkpoints"):
        find_checkpoint(checkpoint_id(outside))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_to_plain_rejects_objects() -> None:
    assert to_plain({1: np.arange(2), "s": {3, 1}}) == {"1": [0, 1], "s": [1, 3]}
    with pytest.raises(TypeError, match="Cannot store a object"):
        to_plain({"x": object()})


def test_store_folder_lookup(tmp_path: Path) -> None:
    path = save_to_store(kind="toy", config={"w": 1}, state_dict=_model().state_dict(), meta={"task": "t"})
    ckpt_id = path.stem
    assert path.parent == checkpoints_dir() and len(ckpt_id) == 12
    assert find_checkpoint(ckpt_id) == path
    assert find_checkpoint(ckpt_id[:7]) == path
    assert find_checkpoint(str(path)) == path
    rows = list_checkpoints(kind="toy")
    assert [r["id"] for r in rows] == [ckpt_id] and rows[0]["meta"] == {"task": "t"}
    assert list_checkpoints(kind="other") == []
    with pytest.raises(CheckpointError, match="no checkpoints"):
        find_checkpoint("abcdef123456")
    with pytest.raises(CheckpointError, match="neither a checkpoint file nor"):
        find_checkpoint("zz")
