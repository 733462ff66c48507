"""Short background tasks: one detached ``python -m crystalrep <argv>`` run per key.

A task owns ``<home>/background/<key>/``: ``spec.json`` (argv, written before the start),
``pid.json`` (pid and its start time), ``stdout.txt``, ``log.txt`` (stderr: progress and errors)
and ``exit.json`` (return code, written when the command ends). Each file has one writer and is
written atomically, so a reader never sees half a state. Unlike :mod:`crystalrep.jobs.pretraining` there is
no heartbeat or resume: a task lasts seconds to minutes, writes its result into the store, and
is simply started again if it died. The files are read as untrusted: a field of the wrong type
counts as absent, and :func:`stop` only signals a process that is provably this task's own.

The child runs ``python -m crystalrep.cli.task <folder>``, which calls the same
:func:`crystalrep.cli.main.main` as ``python -m crystalrep`` and then records its exit code: a
detached process's code is otherwise lost when the parent (a Streamlit server) restarts.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import re
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crystalrep.jobs import procs
from crystalrep.runs import TASK_KEY_RE, read_json, tasks_home
from crystalrep.store import atomic_write_json, inside

__all__ = ["TaskState", "output", "start", "state", "task_dir"]

log = logging.getLogger(__name__)

STARTING_GRACE_S = 30.0  # spec written, pid not yet: the spawning process may be slow to return
_FILES = ("pid.json", "exit.json", "stdout.txt", "log.txt")


@dataclass(frozen=True)
class TaskState:
    """Where a background task stands.

    Attributes:
        state: ``"absent"``, ``"running"``, ``"done"`` or ``"failed"``.
        message: Last line of the task's log (progress while running, the error when failed).
        started: Unix time of the start (``None`` when absent).
        seconds: Run time so far, or until the end.
        returncode: Exit code once finished (``None`` otherwise, or when the process vanished).
    """

    state: str
    message: str = ""
    started: float | None = None
    seconds: float | None = None
    returncode: int | None = None

    @property
    def running(self) -> bool:
        """Whether the task is (still) running."""
        return self.state == "running"


def task_dir(key: str) -> Path:
    """Folder of a task: ``<crystalrep_home()>/background/<key>``; malformed keys raise ``ValueError``."""
    if not isinstance(key, str) or not TASK_KEY_RE.fullmatch(key):
        raise ValueError(f"{key!r} is not a valid task key (letters, digits, '_', '.', '-'; at most 120).")
    return inside(tasks_home(), tasks_home() / key)


_start_ticks = procs.start_ticks
_alive = procs.alive


def _last_line(path: Path) -> str:
    r"""Last non-empty line of a log; tqdm's ``\r`` updates count as lines."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in re.split(r"[\r\n]+", tail) if line.strip()]
    return lines[-1] if lines else ""


def _time(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def state(key: str) -> TaskState:
    """The state of task ``key``, read from its files (nothing is written)."""
    folder = task_dir(key)
    spec = read_json(folder / "spec.json")
    if not spec:
        return TaskState("absent")
    started = _time(spec.get("started"), 0.0)
    end = read_json(folder / "exit.json")
    message = _last_line(folder / "log.txt") or _last_line(folder / "stdout.txt")
    if end:
        raw = end.get("returncode")
        code = raw if isinstance(raw, int) and not isinstance(raw, bool) else 1
        seconds = _time(end.get("finished"), started) - started
        return TaskState("done" if code == 0 else "failed", message, started, seconds, code)
    pid = read_json(folder / "pid.json")
    now = time.time()
    if _alive(pid.get("pid"), pid.get("ticks")) or (not pid and now - started < STARTING_GRACE_S):
        return TaskState("running", message, started, now - started)
    reason = "the process ended without reporting a result" + (f"; last output: {message}" if message else "")
    return TaskState("failed", reason, started, None)


def output(key: str) -> str:
    """What the task printed on stdout (e.g. its ``--json`` result); empty if nothing yet."""
    try:
        return (task_dir(key) / "stdout.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def start(argv: Sequence[str], *, key: str) -> None:
    """Run ``python -m crystalrep <argv>`` detached, unless task ``key`` is already running.

    A finished task of the same key is replaced (its files are cleared first). Check-and-start
    holds a file lock, so two sessions asking at once start one process.

    Args:
        argv: CLI arguments, e.g. ``["project", "--dataset", "default", ...]``.
        key: Task name (letters, digits, ``_.-``); identical requests should share a key.
    """
    argv = [str(a) for a in argv]
    folder = task_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state(key).running:
            log.info("task %s is already running", key)
            return
        for name in ("spec.json", *_FILES):
            (folder / name).unlink(missing_ok=True)
        atomic_write_json(folder / "spec.json", {"argv": argv, "key": key, "started": time.time()})
        with open(folder / "stdout.txt", "wb") as out, open(folder / "log.txt", "wb") as err:
            pid = procs.launch(["crystalrep.cli.task", str(folder)], cwd=folder, stdout=out, stderr=err)
        atomic_write_json(folder / "pid.json", {"pid": pid, "ticks": _start_ticks(pid)})
    log.info("task %s started as pid %d: crystalrep %s", key, pid, " ".join(argv))


def stop(key: str, *, sig: int = signal.SIGTERM) -> bool:
    """Signal a running task's process group; True when there was one to signal.

    Only a process that is provably the task's own is signalled: its pid and start time match
    ``pid.json`` and its command line names the task folder (see :func:`crystalrep.jobs.procs.owned`).
    """
    folder = task_dir(key)
    pid = read_json(folder / "pid.json")
    if not state(key).running:
        return False
    return procs.signal_owned(pid.get("pid"), pid.get("ticks"), folder, sig)


def stop_all() -> list[str]:
    """Stop every running task under the current home (a test server's teardown); returns their keys."""
    root = tasks_home()
    keys = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink()) if root.is_dir() else []
    return [key for key in keys if TASK_KEY_RE.fullmatch(key) and stop(key)]
