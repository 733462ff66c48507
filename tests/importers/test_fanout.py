"""crystalrep.importers.fanout: ordered results from processes and from a local Ray, bounded in flight."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pandas as pd
import pytest

from crystalrep.datasets import DatasetError
from crystalrep.importers.fanout import can_fork, fan_out
from crystalrep.importers.stream import import_streaming


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


_TEST_PROCESS = os.getpid()


def _dies(x: int) -> int:
    if x == 2 and os.getpid() != _TEST_PROCESS:
        os._exit(9)  # a worker killed mid-task (the OOM killer, say)
    return x


def test_processes_return_results_in_order_with_few_tasks_in_flight():
    produced: list[int] = []

    def tasks() -> Iterator[int]:
        for x in range(12):
            produced.append(x)
            yield x

    out = []
    for _pid, value in fan_out(_pid_and_square, tasks(), workers=2, window=3):
        out.append(value)
        assert len(produced) - len(out) <= 3  # never more than the window ahead
    assert out == [x * x for x in range(12)]


def test_one_worker_runs_here():
    assert {pid for pid, _ in fan_out(_pid_and_square, range(3), workers=1)} == {os.getpid()}


def test_a_dead_worker_is_one_sentence():
    if not can_fork():
        pytest.skip(f"threads run in this process ({[t.name for t in threading.enumerate()]}); nothing is forked")
    with pytest.raises(DatasetError, match="worker process died"):
        list(fan_out(_dies, range(4), workers=2))


@pytest.mark.slow
def test_the_ray_path_gives_the_same_dataset(tmp_path, tiny_structures):
    from crystalrep.cluster import ray_session

    path = tmp_path / "set.csv"
    n = 3 * len(tiny_structures)
    pd.DataFrame({"material_id": [f"m-{i}" for i in range(n)], "cif": [s.to(fmt="cif") for s in tiny_structures] * 3,
                  "energy": [str(i) for i in range(n)]}).to_csv(path, index=False)
    single = import_streaming(path, name="single", workers=1, chunk_rows=4)
    with ray_session(None, num_cpus=2):
        on_ray = import_streaming(path, name="ray", ray="local", chunk_rows=4)
    assert on_ray.dataset.fingerprint == single.dataset.fingerprint
    assert on_ray.dataset.properties == single.dataset.properties
    assert [s.sha256 for s in on_ray.dataset.__dict__["_shards"].shards] == [s.sha256 for s in single.dataset.__dict__["_shards"].shards]
