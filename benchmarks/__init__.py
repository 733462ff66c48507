"""Stage benchmarks: each ``bench_*.py`` module exposes ``run(quick: bool) -> list[dict]``.

A row is one timed implementation of one stage::

    {"stage": "graph 6 Å", "impl": "crystalrep arrays_to_graph", "kind": "ours",
     "n": 1000, "seconds": 0.21, "note": ""}

``kind`` is ``ours``, ``peer`` (another library doing the same job) or ``floor`` (the part of
our work we cannot avoid). The runner derives items/s and ratios against the stage's ``ours``
row. A module raises :class:`Skipped` with a reason when its inputs are missing, and may define
``summary(rows) -> list[str]`` for target checks written under its table.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class Skipped(Exception):
    """A benchmark cannot run here; the message says why."""


def shared_data_dir() -> Path:
    """``$CRYSTALREP_SHARED_DATA`` or ``../shared/data`` beside the project; Skipped if absent."""
    env = os.environ.get("CRYSTALREP_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        raise Skipped(f"shared data not found at {path} (set CRYSTALREP_SHARED_DATA)")
    return path


def read_cifs(dataset: str, n: int) -> list[str]:
    """The first ``n`` CIF strings of ``<shared>/<dataset>/val.csv``."""
    import pandas as pd

    path = shared_data_dir() / dataset / "val.csv"
    if not path.is_file():
        raise Skipped(f"{path} is missing")
    return pd.read_csv(path, nrows=n, usecols=["cif"])["cif"].tolist()


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds (garbage collected between calls)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def best_of_each(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each callable, calling them in turn ``repeat`` times.

    Interleaving keeps a change in machine load (a shared box) from favouring one of them.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], best_of(fn, 1))
    return best


def row(stage: str, impl: str, kind: str, n: int, seconds: float, note: str = "") -> dict[str, Any]:
    """One result row (see the module docstring)."""
    if kind not in ("ours", "peer", "floor"):
        raise ValueError(f"kind must be one of ours, peer, floor; got {kind!r}.")
    return {"stage": stage, "impl": impl, "kind": kind, "n": n, "seconds": seconds, "note": note}


def peak_tree_memory(pid: int, running: Callable[[], bool], interval: float) -> tuple[int, int]:
    """Peak PSS and peak RSS sum (bytes) of process ``pid`` and its descendants while ``running()``.

    PSS counts a page shared by forked workers once; the RSS sum counts it in each of them.
    Reading ``smaps`` costs CPU, so sample at ``interval`` seconds, sparingly on a busy machine.
    """
    import psutil

    root = psutil.Process(pid)
    peak_pss = peak_rss = 0
    while running():
        pss = rss = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                info = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            pss, rss = pss + info.pss, rss + info.rss
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(interval)
    return peak_pss, peak_rss


def within_budget(sizes: Iterable[int], budget_s: float, run: Callable[[int], dict[str, Any] | None],
                  growth: float = 1.0) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """``(n, result, why)`` for each size in order: ``run(n)``'s result (a dict with ``seconds``), or ``None``.

    ``run`` returns ``None`` when it was stopped at the budget. A size is not started when its forecast
    from the previous size (time ~ n ** ``growth``; linear by default, a lower bound for every stage
    timed this way) is over the budget, or when the previous size was stopped; ``why`` then says which.
    """
    last: tuple[int, float] | None = None
    for n in sizes:
        forecast = None if last is None else last[1] * (n / last[0]) ** growth
        got = None if forecast is not None and forecast > budget_s else run(n)
        why = ""
        if got is None:
            if forecast is None or forecast <= budget_s:
                why = "stopped at the limit"
            elif last is not None and math.isinf(last[1]):
                why = f"not started: the {last[0]:,}-row size did not finish within the budget"
            else:
                why = f"forecast {forecast:.0f} s"
        last = (n, float("inf") if got is None else float(got["seconds"]))
        yield n, got, why


def run_script(code: str, args: Iterable[str], timeout_s: float) -> dict[str, Any] | None:
    """Run ``python -c code *args`` in a fresh process from the project root; its last stdout line as JSON.

    ``None`` when it ran past ``timeout_s`` (it is then killed); a failure raises ``CalledProcessError``.
    """
    import json
    import subprocess
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        out = subprocess.run([sys.executable, "-c", code, *args], cwd=Path(__file__).resolve().parents[1], env=env,
                             check=True, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
