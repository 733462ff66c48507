from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, DatasetError, save_dataset
from crystalrep.jobs.pretraining import (
    CANCEL_MARKER,
    DIED,
    JobRecorder,
    _proc_start,
    cancel_job,
    create_job,
    job_status,
    list_jobs,
    pid_alive,
    read_json,
    resume_job,
    spec_to_argv,
    start_job,
)
from crystalrep.runs import checkpoint_files, job_checkpoint, jobs_home
from crystalrep.store import atomic_write_json

PEROV = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
# a background job long enough to be killed mid-run; threads=1 keeps it fast on a shared machine
SPEC: dict[str, Any] = {"dataset": "tiny", "task": "masking", "epochs": 60, "batch_size": 4, "threads": 1,
                        "max_structures": 8, "val_fraction": 0.25}


@pytest.fixture(scope="module")
def tiny_dataset() -> Dataset:
    salts = [("Na", "Cl"), ("K", "Cl"), ("Mg", "O"), ("Li", "F")]
    perovs = [("Sr", "Ti"), ("Ba", "Ti"), ("Ca", "Zr"), ("La", "Al")]
    structures = [Structure(Lattice.cubic(4.0 + 0.2 * k), [a, b], [[0, 0, 0], [0.5] * 3]) for k, (a, b) in enumerate(salts)]
    structures += [Structure(Lattice.cubic(3.8 + 0.05 * k), [a, b, "O", "O", "O"], PEROV) for k, (a, b) in enumerate(perovs)]
    return Dataset.from_structures("tiny", [f"c{k}" for k in range(len(structures))], structures)


@pytest.fixture
def saved(tiny_dataset: Dataset) -> Dataset:
    save_dataset(tiny_dataset)
    return tiny_dataset


def wait_for(predicate: Callable[[], Any], what: str, folder: Path | None = None, timeout: float = 180.0) -> Any:
    """Poll until ``predicate()`` is truthy (bounded); on timeout fail with the job's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    log = (folder / "log.txt").read_text()[-4000:] if folder and (folder / "log.txt").is_file() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; log:\n{log}")


def state_is(job_id: str, state: str) -> dict[str, Any] | None:
    status = job_status(job_id)
    return status if status["state"] == state else None


def metric_epochs(folder: Path) -> list[int]:
    from crystalrep.pretrain.trainer import read_metrics

    return [int(r["epoch"]) for r in read_metrics(folder)]


@pytest.fixture
def cli_main() -> Callable[[list[str]], int]:
    """The CLI entry point, called in-process."""
    from crystalrep.cli.main import main

    return main


def test_two_jobs_kill_resume_and_cancel(saved):
    """Two jobs side by side; one is SIGKILLed, shows as failed, resumes where it stopped; both cancel.

    (One test, so the two cold interpreter starts overlap instead of adding up.)
    """
    a = start_job(SPEC)
    b = start_job({**SPEC, "task": "denoise", "seed": 1})
    folders = {a: jobs_home() / a, b: jobs_home() / b}
    assert a != b
    for job_id, folder in folders.items():
        wait_for(lambda folder=folder: checkpoint_files(folder), f"a first checkpoint of {job_id}", folder)
    sa, sb = job_status(a), job_status(b)
    assert sa["state"] == sb["state"] == "running" and sa["pid"] != sb["pid"]

    os.killpg(sa["pid"], signal.SIGKILL)
    failed = wait_for(lambda: state_is(a, "failed"), "the killed job to show as failed", folders[a])
    assert failed["reason"] == DIED
    assert job_status(b)["state"] == "running"  # the other job is untouched
    cancelled_b = cancel_job(b)
    assert cancelled_b["state"] == "cancelled" and not pid_alive(cancelled_b["pid"], cancelled_b.get("pid_start"))

    killed_at = max(checkpoint_files(folders[a]))
    first = checkpoint_files(folders[a])[1].read_bytes()
    assert resume_job(a)["state"] in ("queued", "running")
    wait_for(lambda: max(checkpoint_files(folders[a])) >= killed_at + 2, "two more epochs after resume", folders[a])
    cancelled_a = cancel_job(a)
    assert cancelled_a["state"] == "cancelled" and cancelled_a["attempt"] == 2
    assert not pid_alive(cancelled_a["pid"], cancelled_a.get("pid_start"))
    assert checkpoint_files(folders[a])[1].read_bytes() == first  # continued, not restarted
    with pytest.raises(ValueError, match="cancelled"):
        cancel_job(a)
    assert [r["id"] for r in list_jobs()] == [a, b]

    from crystalrep.checkpoint import load_checkpoint
    from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

    for job_id, folder in folders.items():
        epochs = sorted(checkpoint_files(folder))
        assert epochs == list(range(1, epochs[-1] + 1))
        assert metric_epochs(folder) == epochs  # no duplicated or missing rows
        assert read_json(folder / "spec.json")["id"] == job_id
        assert {load_checkpoint(p).meta["job_id"] for p in checkpoint_files(folder).values()} == {job_id}
    encoder = CGCNNEncoder.from_checkpoint(job_checkpoint(f"{a}:{killed_at}"))
    assert encoder.checkpoint_meta["epoch"] == killed_at


def test_status_derives_failure_from_stale_heartbeat_or_dead_pid(saved):
    job_id = create_job(SPEC)
    folder = jobs_home() / job_id
    me = {"state": "running", "pid": os.getpid(), "pid_start": _proc_start(os.getpid()), "heartbeat_interval": 1.0}
    atomic_write_json(folder / "status.json", {**me, "heartbeat": time.time()})
    assert job_status(job_id)["state"] == "running"
    atomic_write_json(folder / "status.json", {**me, "heartbeat": time.time() - 10})
    assert job_status(job_id)["state"] == "failed" and job_status(job_id)["reason"] == DIED
    atomic_write_json(folder / "status.json", {**me, "heartbeat": time.time(), "pid_start": me["pid_start"] + 1})
    assert job_status(job_id)["state"] == "failed"  # same pid, other process: a reused pid
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    atomic_write_json(folder / "status.json", {**me, "heartbeat": time.time(), "pid": int(gone.stdout), "pid_start": None})
    assert job_status(job_id)["state"] == "failed"
    atomic_write_json(folder / CANCEL_MARKER, {})
    assert job_status(job_id)["state"] == "cancelled"
    assert read_json(folder / "status.json")["state"] == "running"  # derived, never written by readers


def test_job_errors_are_clear(saved):
    with pytest.raises(DatasetError, match="no dataset named 'nope'"):
        create_job({**SPEC, "dataset": "nope"})
    with pytest.raises(ValueError, match="unknown pretraining option"):
        create_job({**SPEC, "learning_rate": 1})
    for bad in ("../etc", "missing-job"):
        with pytest.raises(ValueError):
            job_status(bad)
    job_id = create_job(SPEC)
    atomic_write_json(jobs_home() / job_id / "status.json", {"state": "done"})
    with pytest.raises(ValueError, match="only queued or running"):
        cancel_job(job_id)
    with pytest.raises(ValueError, match="only failed or cancelled"):
        resume_job(job_id)


def test_recorder_beats_and_finishes(tmp_path):
    recorder = JobRecorder(tmp_path, interval=0.05)
    recorder.start(epochs=3)
    first = read_json(tmp_path / "status.json")
    assert first["state"] == "running" and first["pid"] == os.getpid() and first["heartbeat_interval"] == 0.05
    wait_for(lambda: read_json(tmp_path / "status.json").get("heartbeat", 0) > first["heartbeat"], "a heartbeat")
    recorder.update(epoch=1, loss=2.5)
    assert read_json(tmp_path / "status.json")["epoch"] == 1
    recorder.finish("done", progress=1.0)
    final = read_json(tmp_path / "status.json")
    assert final["state"] == "done" and final["progress"] == 1.0 and final["finished"] >= final["started"]
    with pytest.raises(ValueError, match="unknown job state"):
        recorder.finish("exploded")


def test_job_checkpoint_references(saved):
    job_id = create_job(SPEC)
    with pytest.raises(ValueError, match="no checkpoint yet"):
        job_checkpoint(job_id)
    ckdir = jobs_home() / job_id / "checkpoints"
    ckdir.mkdir()
    for name in ("epoch-001.pt", "epoch-002.pt", ".epoch-003.pt.tmp", "notes.pt"):
        (ckdir / name).write_bytes(b"x")
    assert job_checkpoint(job_id).name == "epoch-002.pt"
    assert job_checkpoint(f"{job_id}:1").name == "epoch-001.pt"
    with pytest.raises(ValueError, match="epochs: 1, 2"):
        job_checkpoint(f"{job_id}:7")


def test_cli_foreground_run_and_job_commands(saved, cli_main, capsys):
    argv = ["pretrain", "--dataset", "tiny", "--task", "masking", "--epochs", "2", "--batch-size", "4",
            "--max-structures", "6", "--threads", "1", "--json", "--quiet"]
    assert cli_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["state"] == "done" and [r["epoch"] for r in result["history"]] == [1, 2]
    job_id = result["id"]
    assert cli_main(["jobs", "status", job_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "done"
    assert cli_main(["jobs", "list", "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [job_id]

    from crystalrep.checkpoint import checkpoint_id, find_checkpoint

    published = find_checkpoint(result["checkpoint_id"])  # the final epoch, as cgcnn@<sha-id>
    assert checkpoint_id(published) == checkpoint_id(job_checkpoint(job_id))

    for bad in (["jobs", "cancel", job_id], ["jobs", "status", "nope"], ["pretrain", "--resume"],
                ["pretrain", "--dataset", "nope", "--epochs", "1"], ["pretrain", "--dataset", "tiny", "--epochs", "0"]):
        assert cli_main(bad) == 2, bad
    assert "crystalrep:" in capsys.readouterr().err


def test_spec_argv_round_trips_through_the_parser(saved):
    from crystalrep.cli.pretrain import OPTIONS, add_commands
    from crystalrep.jobs.pretraining import normalize_spec

    spec = normalize_spec({**SPEC, "lr": 3e-4, "sigma": 0.05})
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["pretrain", *spec_to_argv(spec)])
    given = {k: getattr(args, k) for k in ("dataset", *OPTIONS) if getattr(args, k) is not None}
    assert given == {k: v for k, v in spec.items() if v is not None}
