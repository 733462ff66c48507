"""A page's long computation as a background task: a start button, progress with cancel, a failure sentence.

Above a page's size threshold, a computation runs as ``crystalrep <command>`` in a detached process
(:mod:`crystalrep.jobs.background`) that writes its result into the store under the keys the page
reads. While the store lacks the result the page shows :func:`panel`; once it holds it, the page
reads it like any cached result, for every visitor and after a server restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from crystalrep.jobs import background
from crystalrep.store import content_key

POLL_S = 2.0  # seconds between two looks at a running task
CANCELLED = "background.cancelled"  # session state: task keys this visitor cancelled
_STEP = re.compile(r"\bstep (\d+) of (\d+)\b")
_BAR = re.compile(r"\b(\d+)/(\d+) \[")  # a tqdm bar: "probing:  50%|█████     | 1/2 [00:03<00:03, ...]"
_PREFIX = "crystalrep: "  # how the CLI starts its one-line error


def task_key(prefix: str, what: Mapping[str, Any]) -> str:
    """Background task name of a computation: ``prefix`` and the hash of what defines it."""
    return f"{prefix}-{content_key(dict(what))}"


def fraction(message: str) -> float | None:
    """How far a task is, from its last log line (``step 3 of 8`` or a tqdm ``3/8 [``); ``None`` if it does not say."""
    match = _STEP.search(message)
    if match:
        done, total = int(match[1]) - 1, int(match[2])  # "step 3 of 8" is under way: 2 are done
    else:
        match = _BAR.search(message)
        if not match:
            return None
        done, total = int(match[1]), int(match[2])
    return min(1.0, max(0.0, done / total)) if total > 0 else None


def duration(seconds: float | None) -> str:
    """``"42 s"`` or ``"3 min 05 s"``."""
    s = max(0, round(seconds or 0.0))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def panel(key: str, argv: Sequence[str], *, what: str, note: str, button: str) -> None:
    """What a page shows while the store lacks task ``key``'s result.

    Running: progress (the task's last log line, elapsed time) refreshed every :data:`POLL_S`
    seconds, and a Cancel button. Otherwise: the last run's failure as one sentence (or that it was
    cancelled), ``note`` (what the run computes and that its result is kept), and a start button.

    Args:
        key: Background task name (see :func:`task_key`).
        argv: ``crystalrep`` arguments of the run.
        what: The computation as a sentence's subject, e.g. ``"Clustering 200,000 crystals"``.
        note: Why it runs in the background and what happens to the result.
        button: Label of the start button.
    """
    task = background.state(key)
    if task.running:
        _progress(key, what)
        return
    cancelled: set[str] = st.session_state.setdefault(CANCELLED, set())
    if task.state == "failed" and key in cancelled:
        st.info(f"{what} was cancelled.", icon=":material/cancel:")
    elif task.state == "failed":
        reason = task.message.removeprefix(_PREFIX).strip() or "no message"
        st.error(f"{what} failed after {duration(task.seconds)}: {reason}", icon=":material/error:")
    elif task.state == "done":
        st.warning(f"{what} finished, but the store no longer holds its result (removed, or the data changed "
                   "since); run it again.")
    st.info(note, icon=":material/hourglass_top:")
    if st.button(button, key=f"background.start.{key}", type="primary"):
        cancelled.discard(key)
        background.start(list(argv), key=key)
        st.rerun()


@st.fragment(run_every=POLL_S)
def _progress(key: str, what: str) -> None:
    """A running task's progress and Cancel button; the whole page reruns once the task has ended."""
    task = background.state(key)
    if not task.running:
        st.rerun()
    text = f"{what} in the background, {duration(task.seconds)} so far: {task.message or 'starting…'}"
    share = fraction(task.message)
    if share is None:
        st.info(text, icon=":material/progress_activity:")
    else:
        st.progress(share, text=text)
    st.caption("You may leave this page: the result is stored for every visitor (and survives a server restart).")
    if st.button("Cancel", key=f"background.cancel.{key}", icon=":material/stop:"):
        st.session_state.setdefault(CANCELLED, set()).add(key)
        background.stop(key)
        st.rerun()
