"""The one launcher of detached processes, and whether such a process is still ours and alive.

Shared by pretraining jobs and background tasks: both start ``python -m ...`` in a new session
(so a cancel signals the whole group and a server restart does not kill it), with this checkout
on ``PYTHONPATH`` so an uninstalled source tree works as well as an installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

_children: dict[int, subprocess.Popen[bytes]] = {}  # our own children, polled so they get reaped


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


def start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int | None, start: int | None = None) -> bool:
    """Whether ``pid`` is a live (not zombie) process, started at ``start`` ticks when given."""
    if not pid:
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
    return state not in ("Z", "X") and (start is None or start_ticks(pid) in (None, start))
