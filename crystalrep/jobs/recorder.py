"""Inside a pretraining job's process: its ``status.json``, kept current by a heartbeat thread.

:class:`JobRecorder` marks the job running with this process's pid, rewrites ``status.json``
atomically every ``interval`` seconds and writes the final state; it holds :data:`OWNER_FILE` open
so the job's process can be recognised as its own. :class:`JobCancelled` is raised in the job when
it is asked to stop. The outside view (start, status, cancel, resume) is
:mod:`crystalrep.jobs.pretraining`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from crystalrep.jobs import procs
from crystalrep.runs import read_json
from crystalrep.store import atomic_write_json

__all__ = ["CANCEL_MARKER", "HEARTBEAT_S", "OWNER_FILE", "STATES", "JobCancelled", "JobRecorder"]

STATES = ("queued", "running", "done", "failed", "cancelled")
HEARTBEAT_S = 5.0
CANCEL_MARKER = "cancel-requested"
OWNER_FILE = ".recorder"  # held open by the job process: how a foreground job is recognised as ours


class JobCancelled(BaseException):
    """Raised inside a job process when it receives SIGTERM (BaseException so nothing swallows it)."""


class JobRecorder:
    """Inside the job process: keeps ``status.json`` current and beats every ``interval`` seconds."""

    def __init__(self, folder: str | Path, *, interval: float = HEARTBEAT_S) -> None:
        self.folder = Path(folder)
        self.interval = interval
        self._status: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner: Any = None

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
        self._owner = open(self.folder / OWNER_FILE, "a")  # noqa: SIM115 - held open until finish()
        self._status = {**read_json(self.folder / "status.json"), **fields, "state": "running", "pid": pid,
                        "pid_start": procs.start_ticks(pid), "heartbeat_interval": self.interval,
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
        if self._owner is not None:
            self._owner.close()
            self._owner = None
