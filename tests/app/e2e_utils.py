"""Start and stop ``streamlit run app.py`` for the browser tests, and find the browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEALTH_TIMEOUT = 60.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def chromium_path() -> str | None:
    """Debian's chromium (``/usr/bin/chromium``) or whatever ``chromium`` is on PATH."""
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(*, port: int, home: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Run the dashboard headless on ``127.0.0.1:port`` with ``CRYSTALREP_HOME=home``."""
    env = {**os.environ, "CRYSTALREP_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless=true",
           f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
           "--server.fileWatcherType=none"]
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, *, timeout: float = HEALTH_TIMEOUT) -> None:
    """Poll ``/_stcore/health`` until it answers ``ok``; raise if the server dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before becoming healthy.")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {timeout:.0f} s.")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server (kill it if it does not exit within 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def stop_background_tasks(home: Path) -> None:
    """End the UMAP/t-SNE processes the pages started under ``home`` (they outlive the server)."""
    from crystalrep.jobs import background
    previous = os.environ.get("CRYSTALREP_HOME")
    os.environ["CRYSTALREP_HOME"] = str(home)
    try:
        background.stop_all()
    finally:
        if previous is None:
            os.environ.pop("CRYSTALREP_HOME", None)
        else:
            os.environ["CRYSTALREP_HOME"] = previous


IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
DRAWN = ("[...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')].every(e => e.querySelector('.main-svg'))"
         " && [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')].every(e => e.querySelector('canvas'))")
# Page coordinates of every point of a Streamlit plotly chart, from plotly's own axes (works for subplots).
POINTS_JS = """([index, names]) => {
  const gd = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[index];
  const box = gd.getBoundingClientRect();
  const out = [];
  gd._fullData.forEach((trace, t) => {
    if (names && !names.includes(trace.name)) return;
    const xa = gd._fullLayout[trace.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[trace.yaxis.replace('y', 'yaxis')];
    for (let i = 0; i < trace.x.length; i++) {
      out.push({trace: trace.name, x: box.left + window.scrollX + xa._offset + xa.l2p(trace.x[i]),
                y: box.top + window.scrollY + ya._offset + ya.l2p(trace.y[i]), custom: trace.customdata[i]});
    }
  });
  return out;
}"""
TRACES_JS = """(index) => {
  const gd = document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')[index];
  return gd._fullData.map(t => ({name: t.name, ids: Array.from(t.customdata || []).map(c => c[0])}));
}"""


def wait_idle(page: object, *, timeout_ms: int = 120_000) -> None:
    """Wait until the script has run to the end, no spinner shows, and every chart and table has drawn."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout_ms)
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0",
                           timeout=timeout_ms)
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_function(DRAWN, timeout=timeout_ms)
