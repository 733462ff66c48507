"""A ``crystalrep embed`` killed with SIGKILL mid-run resumes from its finished shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, save_dataset
from crystalrep.embed import EMBEDDINGS_KIND, embed_dataset, embedding_key, load_embedding
from crystalrep.embed.files import ShardFolder
from crystalrep.store import Store

SHARD_ROWS = 10
N = 300


def _wait_for(condition, timeout: float) -> bool:  # noqa: ANN001 - a zero-argument predicate
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.slow
def test_kill_9_loses_at_most_the_shard_in_flight(tmp_path: Path) -> None:
    structures = [Structure(Lattice.cubic(4.0 + 0.005 * k), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
                  for k in range(N)]
    dataset = Dataset.from_structures("killme", [f"r{k}" for k in range(N)], structures)
    save_dataset(dataset)
    store = Store()
    folder = ShardFolder(store, embedding_key(dataset, "cgcnn-random"))
    argv = [sys.executable, "-m", "crystalrep", "embed", "--dataset", "killme", "--encoder", "cgcnn-random",
            "--device", "cpu", "--shard-rows", str(SHARD_ROWS), "--quiet"]
    child = subprocess.Popen(argv, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        started = _wait_for(lambda: len(folder.finished()) >= 2 or child.poll() is not None, timeout=240)
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        stderr = child.communicate(timeout=60)[1].decode(errors="replace")
    assert started and child.returncode == -signal.SIGKILL, stderr[-2000:]
    finished = len(folder.finished())
    assert 2 <= finished < N // SHARD_ROWS, "the child must be killed mid-run"
    assert load_embedding(dataset, "cgcnn-random") is None  # nothing half-written in the store

    X, meta = embed_dataset(dataset, "cgcnn-random", device="cpu", shard_rows=SHARD_ROWS)
    assert meta["shards_resumed"] == finished  # every shard finished before the kill was kept
    assert meta["shards"] == N // SHARD_ROWS and not folder.path.exists()
    fresh, _ = embed_dataset(dataset, "cgcnn-random", device="cpu", shard_rows=SHARD_ROWS, store=Store(tmp_path / "fresh"))
    # the kept shards come from the killed child (one thread); this process may run torch with another thread
    # count (an earlier test can change it), which moves float32 sums in the last bits only
    np.testing.assert_allclose(X, fresh, rtol=1e-5, atol=1e-6)
    assert store.load_array(EMBEDDINGS_KIND, meta["key"]) is not None
