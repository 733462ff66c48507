"""Background pretraining jobs: a detached ``crystalrep pretrain`` process and its folder.

Each job owns ``<home>/jobs/<job-id>/``: ``spec.json`` (what to run), ``status.json`` (state,
epoch, progress, pid, heartbeat; always written atomically), ``log.txt``, ``metrics.csv`` and
``checkpoints/epoch-NNN.pt``. Readers (CLI, dashboard) only read these files, so nothing is lost
when they restart. A job that stopped without saying so (kill -9, reboot) is recognised by its
vanished pid or stale heartbeat and reported as failed; it can then be resumed.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from crystalrep.jobs import procs
from crystalrep.runs import job_dir, jobs_home, read_json
from crystalrep.store import atomic_write_json

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
HEARTBEAT_S = 5.0
QUEUED_GRACE_S = 120.0  # a cold interpreter importing torch on a busy machine can take a while
DIED = "process died without saying so"
CANCEL_MARKER = "cancel-requested"


class JobCancelled(BaseException):
    """Raised inside a job process when it receives SIGTERM (BaseException so nothing swallows it)."""


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
        atomic_write_json(folder / "status.json", {**status, "pid": pid})
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


def job_status(job_id: str) -> dict[str, Any]:
    """Status of a job; an active job whose process is gone or silent is reported as failed.

    The derived state is only reported, not written, so a slow but alive job is not disturbed.
    """
    folder = job_dir(job_id)
    status = {"id": job_id, **read_json(folder / "status.json")}
    if status.get("state") not in ACTIVE:
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
        rows.append({"dataset": spec.get("dataset"), "task": spec.get("task"), **job_status(folder.name)})
    return sorted(rows, key=lambda r: float(r.get("created") or 0))


def _stop(pid: int, start: int | None, sig: int, timeout: float) -> bool:
    """Signal a job's process group and wait (bounded) until it is gone; True when it is."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
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
    if pid and not _stop(pid, start, signal.SIGTERM, timeout):
        _stop(pid, start, signal.SIGKILL, timeout)
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
        _stop(status["pid"], status.get("pid_start"), signal.SIGKILL, 10.0)
    (folder / CANCEL_MARKER).unlink(missing_ok=True)
    now = time.time()
    atomic_write_json(folder / "status.json", {**read_json(folder / "status.json"), "state": "queued", "pid": None,
                                               "pid_start": None, "reason": None, "heartbeat": now,
                                               "attempt": int(status.get("attempt") or 1) + 1})
    _spawn(job_id, resume=True)
    return job_status(job_id)


class JobRecorder:
    """Inside the job process: keeps ``status.json`` current and beats every ``interval`` seconds."""

    def __init__(self, folder: str | Path, *, interval: float = HEARTBEAT_S) -> None:
        self.folder = Path(folder)
        self.interval = interval
        self._status: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"JobRecorder(folder={str(self.folder)!r}, interval={self.interval})"

    def _write(self) -> None:
        with self._lock:
            self._status["heartbeat"] = time.time()
            atomic_write_json(self.folder / "status.json", self._status)

    def start(self, **fields: Any) -> None:
        """Mark the job running with this process's pid and start the heartbeat thread."""
        if (self.folder / CANCEL_MARKER).exists():
            raise JobCancelled
        pid = os.getpid()
        self._status = {**read_json(self.folder / "status.json"), **fields, "state": "running", "pid": pid,
                        "pid_start": _proc_start(pid), "heartbeat_interval": self.interval,
                        "started": time.time(), "reason": None}
        self._write()
        self._thread = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._write()

    def set(self, **fields: Any) -> None:
        """Change fields in memory; they reach the file with the next heartbeat."""
        with self._lock:
            self._status.update(fields)

    def update(self, **fields: Any) -> None:
        """Change fields and write the status now."""
        self.set(**fields)
        self._write()

    def finish(self, state: str, **fields: Any) -> None:
        """Stop the heartbeat and write the final state (done, failed or cancelled)."""
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}; valid: {', '.join(STATES)}.")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1)
        self.update(**fields, state=state, finished=time.time())
