"""Jobs trust nothing in their files: a malformed status.json breaks only its own job, and a
cancel signals only a process that is provably the job's own (pid, start ticks, command line)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, save_dataset
from crystalrep.jobs.pretraining import (
    BROKEN,
    _proc_start,
    cancel_job,
    create_job,
    job_status,
    list_jobs,
    resume_job,
)
from crystalrep.runs import jobs_home
from crystalrep.store import atomic_write_json

SPEC: dict[str, Any] = {"dataset": "tiny", "task": "masking", "epochs": 2, "batch_size": 4, "threads": 1,
                        "max_structures": 4, "val_fraction": 0.25}


@pytest.fixture(autouse=True)
def _tiny() -> None:
    structures = [Structure(Lattice.cubic(4.0 + 0.1 * k), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]) for k in range(4)]
    save_dataset(Dataset.from_structures("tiny", [f"c{k}" for k in range(4)], structures))


def _running(**fields: Any) -> dict[str, Any]:
    return {"state": "running", "heartbeat": time.time(), "heartbeat_interval": 60.0, "created": time.time(), **fields}


BAD_STATUS = [
    b"[]", b"garbage", b"{", b'"running"', b"{}",
    json.dumps(_running(pid="abc")).encode(),
    json.dumps(_running(pid=-1)).encode(),
    json.dumps(_running(pid=True)).encode(),
    json.dumps(_running(pid=0)).encode(),
    json.dumps(_running(heartbeat="abc")).encode(),
    json.dumps(_running(heartbeat=None, created=[1])).encode(),
    json.dumps(_running(pid_start="x")).encode(),
    json.dumps(_running(state="exploded")).encode(),
    json.dumps(_running(heartbeat_interval=-5)).encode(),
    json.dumps(_running(epoch="3")).encode(),
    b'{"state": "running", "heartbeat": NaN}',
    b"[" * 100_000,
]


@pytest.mark.parametrize("raw", BAD_STATUS, ids=range(len(BAD_STATUS)))
def test_a_malformed_status_breaks_only_its_own_job(raw, capsys):
    from crystalrep.cli.main import main

    good, bad = create_job(SPEC), create_job(SPEC)
    (jobs_home() / bad / "status.json").write_bytes(raw)
    status = job_status(bad)
    assert status["state"] == BROKEN and status["reason"].startswith(f"job {bad} is broken: ")
    assert {r["id"]: r["state"] for r in list_jobs()} == {good: "queued", bad: BROKEN}
    assert main(["jobs", "list"]) == 0 and main(["jobs", "list", "--json"]) == 0
    assert main(["jobs", "status", bad]) == 0
    capsys.readouterr()
    for verb in ("cancel", "resume"):
        assert main(["jobs", verb, bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "broken" in err
    with pytest.raises(ValueError, match="broken"):
        resume_job(bad)


def test_cancel_never_signals_a_foreign_process():
    job_id = create_job(SPEC)
    foreign = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        atomic_write_json(jobs_home() / job_id / "status.json", _running(pid=foreign.pid, pid_start=_proc_start(foreign.pid)))
        assert job_status(job_id)["state"] == "running"  # alive, right start time, but not ours
        assert cancel_job(job_id, timeout=2)["state"] == "cancelled"
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


def test_cancel_signals_the_jobs_own_process():
    job_id = create_job(SPEC)
    folder = jobs_home() / job_id
    # a stand-in for the job process: its command line names the job folder, as `--job-dir` does
    own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--job-dir", str(folder)],
                           start_new_session=True)
    try:
        atomic_write_json(folder / "status.json", _running(pid=own.pid, pid_start=_proc_start(own.pid)))
        assert cancel_job(job_id, timeout=10)["state"] == "cancelled"
        assert own.wait(timeout=10) != 0
    finally:
        own.kill()
        own.wait()


def test_a_recorded_start_time_that_differs_is_never_signalled():
    job_id = create_job(SPEC)
    folder = jobs_home() / job_id
    own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(folder)], start_new_session=True)
    try:
        atomic_write_json(folder / "status.json", _running(pid=own.pid, pid_start=_proc_start(own.pid) + 1))
        assert job_status(job_id)["state"] == "failed"  # a reused pid: the job's process is gone
        with pytest.raises(ValueError, match="only queued or running"):
            cancel_job(job_id)
        assert own.poll() is None
    finally:
        own.kill()
        own.wait()


def test_a_job_folder_leading_out_of_the_home_is_listed_broken_and_never_touched(tmp_path):
    good = create_job(SPEC)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    atomic_write_json(outside / "spec.json", {"dataset": "tiny"})
    atomic_write_json(outside / "status.json", _running(pid=1))
    (jobs_home() / "linked").symlink_to(outside)
    rows = {r["id"]: r for r in list_jobs()}
    assert rows[good]["state"] == "queued" and rows["linked"]["state"] == BROKEN
    for act in (job_status, cancel_job, resume_job):
        with pytest.raises(ValueError, match="leads outside"):
            act("linked")
    assert json.loads((outside / "status.json").read_text())["pid"] == 1
