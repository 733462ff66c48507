"""The one launcher of detached processes, and whether such a process is still ours and alive.

Shared by pretraining jobs and background tasks: both start ``python -m ...`` in a new session
(so a cancel signals the whole group and a server restart does not kill it), with this checkout
on ``PYTHONPATH`` so an uninstalled source tree works as well as an installed package.

Pids come back from files anyone could have edited, so nothing here trusts them: a pid must be a
plain integer above 1, and a process is only signalled when it is provably ours (:func:`owned`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_children: dict[int, subprocess.Popen[bytes]] = {}  # our own children, polled so they get reaped
MAX_PID = 1 << 22  # Linux's pid_max ceiling


def launch(module_argv: Sequence[str], *, cwd: Path, stdout: IO[bytes], stderr: IO[bytes] | int) -> int:
    """Start ``python -m <module_argv>`` detached (own session, no stdin); returns its pid.

    Args:
        module_argv: Module and its arguments, e.g. ``["crystalrep", "pretrain", ...]``.
        cwd: Working folder of the child (its run folder, so nothing lands in the caller's).
        stdout: Open binary file receiving the child's standard output.
        stderr: Open binary file, or ``subprocess.STDOUT``.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the crystalrep package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen([sys.executable, "-m", *module_argv], stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=stderr, cwd=cwd, env=env, start_new_session=True)
    adopt(proc)
    return proc.pid


def adopt(proc: subprocess.Popen[bytes]) -> None:
    """Remember a child we started, so :func:`alive` can reap it instead of seeing a zombie."""
    _children[proc.pid] = proc


def as_pid(value: object) -> int | None:
    """``value`` as a process id (an int in 2..pid_max, not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 < value < MAX_PID:
        return None
    return value


def as_ticks(value: object) -> int | None:
    """``value`` as a start time in clock ticks (a non-negative int, not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    if as_pid(pid) is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: object, start: object = None) -> bool:
    """Whether ``pid`` is a live (not zombie) process, started at ``start`` ticks when given.

    A malformed pid (a string, a bool, 0, 1, negative) is never alive: ``kill(-1, 0)`` would ask
    about every process.
    """
    pid = as_pid(pid)
    if pid is None:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust kill(0)
    ticks = as_ticks(start)
    return state not in ("Z", "X") and (ticks is None or start_ticks(pid) in (None, ticks))


def _mentions(pid: int, folder: Path) -> bool:
    """Whether the process's command line names ``folder``, or it holds a file under it open."""
    targets = {str(folder), str(folder.resolve())}
    try:
        args = [os.fsdecode(arg) for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if arg]
    except OSError:
        return False
    if any(target in arg for arg in args for target in targets):
        return True
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(tuple(t + os.sep for t in targets)):
                return True
        except OSError:
            continue
    return False


def owned(pid: object, start: object, folder: Path) -> bool:
    """Whether ``pid`` is provably the process recorded for ``folder``.

    All three must hold: the pid is well-formed and alive, its start time in ``/proc`` equals
    the ``start`` ticks recorded at spawn (a reused pid has another), and its command line names
    ``folder`` or it holds a file inside ``folder`` open (a foreground job's lock file).
    """
    pid, ticks = as_pid(pid), as_ticks(start)
    if pid is None or ticks is None or not alive(pid, ticks):
        return False
    return start_ticks(pid) == ticks and _mentions(pid, folder)


def signal_owned(pid: object, start: object, folder: Path, sig: int) -> bool:
    """Send ``sig`` to a process (its group when it leads one) only if :func:`owned`; True if sent."""
    checked = as_pid(pid)
    if checked is None or not owned(checked, start, folder):
        if checked is not None and alive(checked):
            log.warning("pid %s is not provably the process of %s; not signalled", checked, folder)
        return False
    try:
        if os.getpgid(checked) == checked:
            os.killpg(checked, sig)
        else:
            os.kill(checked, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
