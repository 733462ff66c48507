"""Acceptance: a real two-node Ray cluster on 127.0.0.1 runs ``embed --ray`` and a 2-worker ``pretrain``.

The head and a second worker node are started with ``ray start --block``, each in its own process
group, with token authentication (a token file of this test's own), and are stopped by killing
those two groups in the fixture's finalizer, whatever the test did (``ray stop`` would stop every
Ray of this user on the machine). The commands run in one child interpreter, as a user would run
them, so no Ray state of the test process is shared with the cluster.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, save_dataset
from crystalrep.embed import embed_dataset, load_embedding
from crystalrep.store import Store

RAY = str(Path(sys.executable).with_name("ray"))
N, SHARD_ROWS = 40, 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(groups: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM ``ray start --block`` process groups (each stops its raylet, GCS, workers), then SIGKILL them."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group.pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + timeout
        while any(_group_alive(g.pid) for g in groups) and time.monotonic() < deadline:
            for group in groups:
                try:
                    group.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
        if not any(_group_alive(g.pid) for g in groups):
            return


def _group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _active_nodes(address: str, env: dict[str, str]) -> int:
    out = subprocess.run([RAY, "status", "--address", address], env=env, capture_output=True, text=True, timeout=120)
    active = out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out.stdout else ""
    return len(re.findall(r"^\s*\d+ node_", active, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """``(address, env)`` of a head (1 CPU) and a worker node (1 CPU) on 127.0.0.1; stopped afterwards."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = Path(tempfile.mkdtemp(prefix="crt", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    (temp / "token").write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(temp / "token"),
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    commands = [
        [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
         "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp), "--block"],
        [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--block"],
    ]
    groups: list[subprocess.Popen] = []
    try:
        for k, argv in enumerate(commands):
            with open(temp / f"node{k}.log", "wb") as log:
                groups.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))
        deadline = time.monotonic() + 90
        while _active_nodes(address, env) < 2:
            assert time.monotonic() < deadline, (temp / "node1.log").read_text()[-2000:]
            assert all(g.poll() is None for g in groups), (temp / "node0.log").read_text()[-2000:]
        yield address, env
    finally:
        _stop(groups)
        assert not any(_group_alive(g.pid) for g in groups)


def _small_dataset() -> Dataset:
    structures = [Structure(Lattice.cubic(4.0 + 0.01 * k), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
                  for k in range(N)]
    dataset = Dataset.from_structures("small", [f"r{k}" for k in range(N)], structures)
    save_dataset(dataset)
    return dataset


@pytest.mark.slow
def test_embed_and_pretrain_on_a_two_node_cluster(ray_cluster: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = ray_cluster
    dataset = _small_dataset()
    script = (
        "import json, sys\n"
        "from crystalrep.cli.main import main\n"
        f"embed = ['embed', '--dataset', 'small', '--encoder', 'cgcnn-random', '--ray', {address!r},"
        f" '--shard-rows', '{SHARD_ROWS}', '--json', '--quiet']\n"
        f"train = ['pretrain', '--dataset', 'small', '--task', 'denoise', '--epochs', '1', '--batch-size', '8',"
        f" '--workers', '2', '--ray', {address!r}, '--device', 'cpu', '--json', '--quiet']\n"
        "sys.exit(main(embed) or main(train))\n"
    )
    child_env = {**env, "CRYSTALREP_HOME": os.environ["CRYSTALREP_HOME"]}
    out = subprocess.run([sys.executable, "-c", script], env=child_env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    decoder = json.JSONDecoder()
    text = out.stdout.strip()
    embedded, end = decoder.raw_decode(text)
    status, _ = decoder.raw_decode(text[end:].strip())

    row = embedded[0]
    assert row["engine"] == "ray" and row["workers"] == 2 and row["shards"] == N // SHARD_ROWS
    assert row["model_loads"] == 2  # one per actor, not one per shard
    on_ray = load_embedding(dataset, "cgcnn-random")
    assert on_ray is not None
    single, _ = embed_dataset(dataset, "cgcnn-random", device="cpu", shard_rows=SHARD_ROWS, store=Store(tmp_path))
    np.testing.assert_allclose(on_ray[0], single, rtol=1e-6, atol=1e-7)

    assert status["state"] == "done" and status["epoch"] == 1 and status["checkpoint_id"]
    folder = Path(os.environ["CRYSTALREP_HOME"]) / "jobs" / status["id"]
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["workers"] == 2 and spec["ray_address"] == address
    assert (folder / "checkpoints" / "epoch-001.pt").is_file() and not (folder / ".ray-train").exists()
    from crystalrep.encoders import get_encoder

    encoder = get_encoder(f"cgcnn@{status['id']}")
    assert encoder.checkpoint_meta["params"]["workers"] == 2
    X = encoder.embed_dataset(dataset, device="cpu")
    assert X.shape == (N, encoder.dim) and np.isfinite(X).all()
