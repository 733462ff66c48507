"""The Ray Train worker loop, run in this process as a world of one (gloo): resumes exactly, writes like the trainer.

The real two-worker run on a two-node Ray cluster is in ``tests/test_cluster_ray.py``.
"""

from __future__ import annotations

import socket
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from crystalrep.checkpoint import load_checkpoint
from crystalrep.datasets import Dataset
from crystalrep.pretrain import PretrainConfig
from crystalrep.pretrain.records import find_resume_point, read_metrics, write_epoch
from tests.pretrain.test_trainer import SMALL, tiny_crystals


class _Died(Exception):
    pass


class _Events:
    """The driver's side of the queue: writes each epoch as ``pretrain_distributed`` does."""

    def __init__(self, out: Path, *, die_after: int | None = None) -> None:
        self.out, self.die_after, self.progress = out, die_after, []

    def put(self, event: tuple[str, Any]) -> None:
        kind, payload = event
        if kind == "progress":
            self.progress.append(payload)
            return
        epoch, files = payload
        write_epoch(self.out, epoch, files)
        if self.die_after is not None and epoch >= self.die_after:
            raise _Died


@pytest.fixture
def world_of_one(monkeypatch: pytest.MonkeyPatch):
    import ray
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    monkeypatch.setattr(ray.train, "get_context", lambda: SimpleNamespace(get_world_rank=lambda: 0, get_world_size=lambda: 1))
    monkeypatch.setattr(ray.train.torch, "get_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(ray, "get", lambda ref: ref)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _run(dataset: Dataset, config: PretrainConfig, out: Path, events: _Events) -> None:
    from crystalrep.pretrain.distributed import _worker_loop

    found = find_resume_point(out)
    _worker_loop({"dataset": dataset, "found": found, "config": config.to_dict(), "meta": {"job_id": "j"},
                  "where": str(out), "events": events, "encoder_config": asdict(SMALL)})


@pytest.mark.slow
@pytest.mark.parametrize("task", ["denoise", "contrastive"])
def test_a_killed_worker_run_resumes_to_the_same_weights(world_of_one, tmp_path: Path, task: str) -> None:
    structures = tiny_crystals()
    dataset = Dataset.from_structures("tiny", [f"c{k}" for k in range(len(structures))], structures)
    config = PretrainConfig(task=task, epochs=2, batch_size=4, lr=3e-3, threads=1, workers=2)  # config of 2 workers
    straight = _Events(tmp_path / "a")
    _run(dataset, config, tmp_path / "a", straight)
    with pytest.raises(_Died):
        _run(dataset, config, tmp_path / "b", _Events(tmp_path / "b", die_after=1))
    assert [r["epoch"] for r in read_metrics(tmp_path / "b")] == [1]
    _run(dataset, config, tmp_path / "b", _Events(tmp_path / "b"))
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "epoch-002.pt", kind="cgcnn")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "epoch-002.pt", kind="cgcnn")
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    for column in ("epoch", "loss", "val_loss", "grad_norm"):  # all but the timings
        assert [r[column] for r in read_metrics(tmp_path / "a")] == [r[column] for r in read_metrics(tmp_path / "b")]
    assert a.meta["params"]["workers"] == 2 and a.meta["job_id"] == "j"
    assert straight.progress[-1] == (6, 6)  # 3 batches per epoch, 2 epochs
