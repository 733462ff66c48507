"""Is that detached process still ours and alive? Shared by pretraining jobs and background tasks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_children: dict[int, subprocess.Popen[bytes]] = {}  # our own children, polled so they get reaped


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
