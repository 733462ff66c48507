"""Shared by the page tests that run real background tasks: a fresh AppTest server, a bounded
poll on tasks, and store clean-up (so the page must take the background path)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from crystalrep.jobs import background

APP = str(Path(__file__).resolve().parents[2] / "app.py")
REAL_START = background.start  # tests/app/conftest.py replaces it with a recorder for every test
WAIT_S = 90.0


def fresh_page(page: str, *, encoders: Iterable[str] = ("magpie",), prop: str | None = None,
               params: Mapping[str, str] | None = None, timeout: float = 120) -> AppTest:
    """``page`` on dataset ``small`` in a fresh server: Streamlit's caches cleared, only the store survives."""
    from ui import state

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state[state.DATASET] = "small"
    at.session_state[state.ENCODERS] = list(encoders)
    if prop is not None:
        at.session_state[state.PROPERTY] = prop
    at.query_params.update(dict(params or {}))
    at.run()
    return at.switch_page(page).run()


def start_task(at: AppTest) -> AppTest:
    """Click the page's one background start button."""
    starts = [b for b in at.button if b.key and b.key.startswith("background.start.")]
    assert len(starts) == 1, [b.key for b in at.button]
    return starts[0].click().run()


def tasks_ended(prefix: str, n: int = 1) -> list[background.TaskState]:
    """Bounded poll until the ``n`` tasks named ``prefix-…`` have ended; their states."""
    from crystalrep.runs import tasks_home

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        tasks = [background.state(p.name) for p in sorted(tasks_home().glob(f"{prefix}-*"))]
        assert len(tasks) <= n, [t.message for t in tasks]
        if len(tasks) == n and not any(t.running for t in tasks):
            return tasks
        time.sleep(0.2)
    raise AssertionError(f"{n} {prefix} task(s) did not end within {WAIT_S} s")


def forget(*kinds: str) -> None:
    """Delete every store entry of ``kinds``."""
    from crystalrep.store import Store

    store = Store()
    for kind in kinds:
        for key in store.keys(kind):
            store.delete(kind, key)
