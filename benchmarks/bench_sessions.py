"""Twenty concurrent dashboard sessions: a fresh `streamlit run app.py`, 20 browsers open the Data page at once.

A fresh `CRYSTALREP_HOME` and a fresh server on 127.0.0.1 (the built-in default dataset); one
Debian chromium with 20 Playwright browser contexts (separate sessions) opens `/dataset` at the
same moment, and each waits until the page has run to the end and every chart and table has drawn
(`tests/app/e2e_utils.py`'s rule). Measured: wall time until all 20 have rendered, the server's
peak RSS (`VmHWM`), and the latency of `/_stcore/health` polled every 0.25 s during the load
(what a load balancer sees), and the CPU seconds the server and the browser spent (less sensitive to
other load on a shared machine than wall time). The floor row is one session alone on the same,
now warm, server.
Needs Debian's chromium and playwright (skipped otherwise); `--quick` opens 4 sessions.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import Skipped, row

SESSIONS = 20
QUICK_SESSIONS = 4
TIMEOUT_S = 480
POLL_S = 0.25


class _Watch:
    """Poll the server's health endpoint and memory in a thread while the sessions load."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.latencies: list[float] = []
        self.started: list[float] = []  # when each check was sent, seconds after the watch began
        self._t0 = time.perf_counter()
        self.rss_mb: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            self.started.append(start - self._t0)
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=60) as resp:
                    resp.read()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # a failed check counts with the time it took
            self.latencies.append(time.perf_counter() - start)
            self.rss_mb.append(status_mb(self.pid, "VmRSS"))
            self._stop.wait(POLL_S)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the browser and its driver, once they exit."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def status_mb(pid: int, field: str) -> float:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``) in MB; 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


async def _session(browser: Any, url: str) -> float:
    """Seconds for one new browser context until the Data page has drawn everything."""
    from tests.app.e2e_utils import DRAWN, IDLE

    start = time.perf_counter()
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    await page.goto(f"{url}/dataset", wait_until="commit")  # the page is judged by what it draws, below
    await page.wait_for_selector(IDLE)
    await page.wait_for_selector("[data-testid='stMain'] h1")
    await page.wait_for_function("document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0")
    await page.wait_for_selector(IDLE)
    await page.wait_for_function(DRAWN)
    seconds = time.perf_counter() - start
    await context.close()
    return seconds


async def _open(url: str, n: int) -> tuple[float, list[float]]:
    """Open ``n`` sessions at once; returns the wall time until all rendered and each one's time."""
    from playwright.async_api import async_playwright

    from tests.app.e2e_utils import CHROMIUM_ARGS, chromium_path

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        start = time.perf_counter()
        each = await asyncio.gather(*(_session(browser, url) for _ in range(n)))
        total = time.perf_counter() - start
        await browser.close()
    return total, list(each)


def measure(n: int) -> dict[str, Any]:
    """One fresh server and home: ``n`` concurrent sessions, then one session alone."""
    from tests.app.e2e_utils import (
        chromium_path,
        free_port,
        start_server,
        stop_server,
        wait_healthy,
    )

    if chromium_path() is None:
        raise Skipped("no chromium (install Debian's chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as exc:
        raise Skipped("playwright is not installed") from exc
    home = Path(tempfile.mkdtemp(prefix="crystalrep-sessions-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port=port, home=home, log_path=home / "streamlit.log")
    try:
        wait_healthy(proc, url, timeout=120)
        idle_mb = status_mb(proc.pid, "VmRSS")
        load_before = os.getloadavg()[0]
        cpu_idle, browser_idle = cpu_seconds(proc.pid), _children_cpu()
        with _Watch(url, proc.pid) as watch:
            total, each = asyncio.run(_open(url, n))
        cpu, browser_cpu = cpu_seconds(proc.pid) - cpu_idle, _children_cpu() - browser_idle
        peak_mb = max(status_mb(proc.pid, "VmHWM"), *watch.rss_mb, 0.0)
        alone, _ = asyncio.run(_open(url, 1))
        load_after = os.getloadavg()[0]
    finally:
        stop_server(proc)
        shutil.rmtree(home, ignore_errors=True)
    lat = watch.latencies or [float("nan")]
    worst = int(max(range(len(lat)), key=lat.__getitem__)) if watch.latencies else 0
    return {"n": n, "total": total, "first": min(each), "median_session": statistics.median(each),
            "alone": alone, "idle_mb": idle_mb, "peak_mb": peak_mb, "health_max": max(lat),
            "health_median": statistics.median(lat), "health_checks": len(watch.latencies),
            "health_max_at": watch.started[worst] if watch.started else float("nan"), "server_cpu": cpu,
            "browser_cpu": browser_cpu,
            "load_before": load_before, "load_after": load_after}


def run(quick: bool) -> list[dict[str, Any]]:
    """Measure ``SESSIONS`` (``QUICK_SESSIONS`` when quick) concurrent Data-page sessions."""
    m = measure(QUICK_SESSIONS if quick else SESSIONS)
    note = (f"first session {m['first']:.1f} s, median {m['median_session']:.1f} s; CPU: server "
            f"{m['server_cpu']:.0f} s, browser {m['browser_cpu']:.0f} s; server RSS idle {m['idle_mb']:.0f} MB, peak {m['peak_mb']:.0f} MB; /_stcore/health median "
            f"{m['health_median']:.3f} s, max {m['health_max']:.1f} s over {m['health_checks']} checks; "
            f"1-min load {m['load_before']:.2f} before, {m['load_after']:.2f} after")
    stage = f"Data page, {m['n']} sessions at once"
    return [row(stage, "all sessions rendered (wall time), fresh server", "ours", m["n"], m["total"], note),
            row(stage, "one session alone on the warm server", "floor", 1, m["alone"])]


def summary(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['stage']}: all rendered after {r['seconds']:.1f} s; {r['note']}." for r in rows if r["kind"] == "ours"]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else SESSIONS), indent=1))
