"""Background pretraining jobs: a detached ``crystalrep pretrain`` process and its folder.

Each job owns ``<home>/jobs/<job-id>/``: ``spec.json`` (what to run), ``status.json`` (state,
epoch, progress, pid, heartbeat; always written atomically), ``log.txt``, ``metrics.csv`` and
``checkpoints/epoch-NNN.pt``. Readers (CLI, dashboard) only read these files, so nothing is lost
when they restart. A job that stopped without saying so (kill -9, reboot) is recognised by its
vanished pid or stale heartbeat and reported as failed; it can then be resumed. The job process
keeps its own status current through :class:`~crystalrep.jobs.recorder.JobRecorder` (re-exported
here with :class:`~crystalrep.jobs.recorder.JobCancelled`).

Nothing in ``status.json`` is trusted: a file that is not an object, or holds a field of the wrong
type (a pid that is not a number, a heartbeat that is not a time), makes that one job ``broken``
(listed, never signalled); a cancel only signals a process that is provably the job's own.
"""

from __future__ import annotations

import logging
import math
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from crystalrep.jobs import procs
from crystalrep.jobs.recorder import (
    CANCEL_MARKER,
    HEARTBEAT_S,
    OWNER_FILE,
    STATES,
    JobCancelled,
    JobRecorder,
)
from crystalrep.runs import job_dir, jobs_home, read_json
from crystalrep.store import atomic_write_json

__all__ = ["ACTIVE", "BROKEN", "CANCEL_MARKER", "DIED", "HEARTBEAT_S", "OWNER_FILE", "QUEUED_GRACE_S", "STATES",
           "JobCancelled", "JobRecorder", "cancel_job", "create_job", "job_status", "list_jobs", "normalize_spec",
           "pid_alive", "read_json", "resume_job", "spec_to_argv", "start_job"]

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
BROKEN = "broken"  # reported for a status file that cannot be trusted; never written
QUEUED_GRACE_S = 120.0  # a cold interpreter importing torch on a busy machine can take a while
DIED = "process died without saying so"
_TIMES = ("created", "heartbeat", "started", "finished")
_COUNTS = ("epoch", "epochs", "attempt")


def normalize_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a spec ``{"dataset": name, **PretrainConfig options}`` and fill in defaults."""
    from crystalrep.datasets import DatasetError, dataset_dir, list_datasets
    from crystalrep.pretrain import PretrainConfig

    options = {k: v for k, v in spec.items() if k != "dataset"}
    config = PretrainConfig.from_dict(options)
    name = spec.get("dataset")
    if not isinstance(name, str) or not (dataset_dir(name) / "meta.json").is_file():
        known = ", ".join(d["name"] for d in list_datasets()) or "none"
        raise DatasetError(f"no dataset named {name!r}; known: {known}.")
    return {"dataset": name, **config.to_dict()}


def create_job(spec: dict[str, Any]) -> str:
    """Make a job folder with ``spec.json`` and a queued status; returns the new job id."""
    spec = normalize_spec(spec)
    jobs_home().mkdir(parents=True, exist_ok=True)
    while True:
        job_id = f"{spec['task']}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            (jobs_home() / job_id).mkdir()
            break
        except FileExistsError:
            continue
    folder = jobs_home() / job_id
    now = time.time()
    atomic_write_json(folder / "spec.json", {**spec, "id": job_id, "created": now})
    atomic_write_json(folder / "status.json", {"id": job_id, "state": "queued", "created": now, "heartbeat": now,
                                               "epoch": 0, "epochs": spec["epochs"], "progress": 0.0, "attempt": 1})
    return job_id


def spec_to_argv(spec: dict[str, Any]) -> list[str]:
    """The ``crystalrep pretrain`` options that reproduce a spec."""
    argv = []
    for key, value in spec.items():
        if key not in ("id", "created") and value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def _spawn(job_id: str, *, resume: bool) -> int:
    folder = job_dir(job_id)
    spec = read_json(folder / "spec.json")
    argv = ["crystalrep", "pretrain", *spec_to_argv(spec), "--job-dir", str(folder), "--quiet"]
    if resume:
        argv.append("--resume")
    with open(folder / "log.txt", "ab") as logfile:
        pid = procs.launch(argv, cwd=folder, stdout=logfile, stderr=subprocess.STDOUT)
    status = read_json(folder / "status.json")
    if status.get("state") == "queued" and not status.get("pid"):
        atomic_write_json(folder / "status.json", {**status, "pid": pid, "pid_start": _proc_start(pid)})
    log.info("job %s started as pid %d", job_id, pid)
    return pid


def start_job(spec: dict[str, Any]) -> str:
    """Create a job and run it in a detached ``python -m crystalrep pretrain`` process.

    Args:
        spec: ``{"dataset": name, "task": ..., "epochs": ..., ...}`` (options of
            :class:`crystalrep.pretrain.PretrainConfig`).

    Returns:
        The job id.
    """
    job_id = create_job(spec)
    _spawn(job_id, resume=False)
    return job_id


_proc_start = procs.start_ticks
pid_alive = procs.alive


def _finite(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _problem(status: object) -> str | None:
    """Why a status file cannot be trusted (one phrase), or ``None`` when every field is well-formed."""
    if not isinstance(status, dict) or not status:
        return "status.json is missing, unreadable or not a JSON object"
    if status.get("state") not in STATES:
        return f"its state {str(status.get('state'))[:40]!r} is not one of {', '.join(STATES)}"
    if status.get("pid") is not None and procs.as_pid(status["pid"]) is None:
        return "its pid is not a process id"
    if status.get("pid_start") is not None and procs.as_ticks(status["pid_start"]) is None:
        return "its pid_start is not a start time"
    for key in _TIMES:
        if status.get(key) is not None and not _finite(status[key]):
            return f"its {key} is not a time"
    interval = status.get("heartbeat_interval")
    if interval is not None and not (_finite(interval) and 0 < interval <= 3600):
        return "its heartbeat_interval is not a positive number of seconds"
    for key in _COUNTS:
        value = status.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            return f"its {key} is not a count"
    if status.get("progress") is not None and not _finite(status["progress"]):
        return "its progress is not a number"
    return None


def job_status(job_id: str) -> dict[str, Any]:
    """Status of a job; an active job whose process is gone or silent is reported as failed.

    The derived state is only reported, not written, so a slow but alive job is not disturbed.
    A status file that cannot be trusted is reported as state ``"broken"`` with the reason.
    """
    folder = job_dir(job_id)
    raw = read_json(folder / "status.json")
    problem = _problem(raw)
    if problem is not None:
        return {"id": job_id, "state": BROKEN, "reason": f"job {job_id} is broken: {problem}.",
                "created": raw.get("created") if _finite(raw.get("created")) else None}
    status = {**raw, "id": job_id}
    if status["state"] not in ACTIVE:
        return status
    age = time.time() - float(status.get("heartbeat") or 0)
    limit = 3 * float(status.get("heartbeat_interval") or HEARTBEAT_S)
    queued = status["state"] == "queued"
    gone = bool(status.get("pid")) and not pid_alive(status["pid"], status.get("pid_start"))
    if gone or (not queued and age > limit) or (queued and age > QUEUED_GRACE_S):
        cancelled = (folder / CANCEL_MARKER).exists()
        status.update(state="cancelled" if cancelled else "failed", reason="cancelled" if cancelled else DIED)
    return status


def list_jobs() -> list[dict[str, Any]]:
    """Status of every job, oldest first, with the dataset and task of its spec."""
    home = jobs_home()
    folders = sorted(p for p in home.iterdir() if (p / "spec.json").is_file()) if home.is_dir() else []
    rows = []
    for folder in folders:
        spec = read_json(folder / "spec.json")
        try:
            status = job_status(folder.name)
        except ValueError as exc:  # a malformed id or a folder leading elsewhere: listed, never touched
            status = {"id": folder.name[:80], "state": BROKEN, "reason": str(exc), "created": None}
        rows.append({"dataset": spec.get("dataset"), "task": spec.get("task"), **status})
    return sorted(rows, key=lambda r: float(r["created"]) if _finite(r.get("created")) else 0.0)


def _stop(folder: Path, pid: int, start: int | None, sig: int, timeout: float) -> bool:
    """Signal a job's process (group) if it is provably ours, and wait (bounded) until it is gone.

    Returns True when the process is gone; a process that is not provably the job's is left alone
    and counts as gone (the job's own process no longer runs under that pid).
    """
    if not procs.signal_owned(pid, start, folder, sig):
        return True
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def cancel_job(job_id: str, *, timeout: float = 15.0) -> dict[str, Any]:
    """SIGTERM a queued or running job's process group, wait for it, mark it cancelled."""
    folder = job_dir(job_id)
    status = job_status(job_id)
    if status["state"] not in ACTIVE:
        raise ValueError(f"job {job_id} is {status['state']}; only queued or running jobs can be cancelled.")
    atomic_write_json(folder / CANCEL_MARKER, {"requested": time.time()})
    pid, start = status.get("pid"), status.get("pid_start")
    if pid and not _stop(folder, pid, start, signal.SIGTERM, timeout):
        _stop(folder, pid, start, signal.SIGKILL, timeout)
    final = {**read_json(folder / "status.json"), "state": "cancelled", "reason": "cancelled by user",
             "finished": time.time()}
    atomic_write_json(folder / "status.json", final)
    return job_status(job_id)


def resume_job(job_id: str) -> dict[str, Any]:
    """Restart a failed or cancelled job from its last checkpoint, in a new detached process."""
    folder = job_dir(job_id)
    status = job_status(job_id)
    if status["state"] not in ("failed", "cancelled"):
        raise ValueError(f"job {job_id} is {status['state']}; only failed or cancelled jobs can be resumed.")
    if pid_alive(status.get("pid"), status.get("pid_start")):
        log.warning("job %s: its silent process %s is still alive; killing it first", job_id, status["pid"])
        _stop(folder, status["pid"], status.get("pid_start"), signal.SIGKILL, 10.0)
    (folder / CANCEL_MARKER).unlink(missing_ok=True)
    now = time.time()
    atomic_write_json(folder / "status.json", {**read_json(folder / "status.json"), "state": "queued", "pid": None,
                                               "pid_start": None, "reason": None, "heartbeat": now,
                                               "attempt": int(status.get("attempt") or 1) + 1})
    _spawn(job_id, resume=True)
    return job_status(job_id)
