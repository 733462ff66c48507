"""Time to the first drawn map: `streamlit run app.py` → the Projections page, cold and warm.

What a user sees after `make run` (the virtualenv already built): the server starts, Chromium
opens `/maps` on the built-in default dataset, and we wait for (a) the PCA map to be drawn
(a plotly WebGL chart on screen) and (b) all three maps (PCA, UMAP, t-SNE) to be drawn — UMAP
and t-SNE are computed by background `crystalrep project` processes the page starts.
`cold` is a fresh `CRYSTALREP_HOME` (no embeddings, projections or numba cache);
`warm` is a second server start on the same home (everything in the store). There is no peer:
the rows report seconds to each event; the floor is the bare server start (`/_stcore/health`).
Needs Debian's chromium and playwright (skipped otherwise).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Skipped, row

ROOT = Path(__file__).resolve().parents[1]
CHARTS = "[data-testid='stPlotlyChart'] .main-svg"
# charts that have drawn (a plotly chart holds several .main-svg layers, so count the charts)
DRAWN_CHARTS = ("[...document.querySelectorAll(\"[data-testid='stPlotlyChart']\")]"
                ".filter(e => e.querySelector('.main-svg')).length")
TIMEOUT_S = 600


def _open_maps(url: str, encoder: str) -> tuple[float, float]:
    """Seconds until the first map, then all three maps, are drawn."""
    from playwright.sync_api import sync_playwright

    from tests.app.e2e_utils import CHROMIUM_ARGS, chromium_path

    start = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(url)  # the first page creates the session; then the maps page with one encoder
        page.wait_for_selector("[data-testid='stMain'] h1")
        page.goto(f"{url}/maps?dataset=default")
        page.wait_for_selector("[data-testid='stMain'] h1")
        page.wait_for_selector(CHARTS)
        first = time.perf_counter() - start
        page.wait_for_function(f"{DRAWN_CHARTS} >= 3")
        every = time.perf_counter() - start
        browser.close()
    return first, every


def run(quick: bool) -> list[dict[str, Any]]:
    """Start the dashboard twice on one fresh home and time the first maps."""
    from tests.app.e2e_utils import (
        chromium_path,
        free_port,
        start_server,
        stop_background_tasks,
        stop_server,
        wait_healthy,
    )

    if chromium_path() is None:
        raise Skipped("no chromium (install Debian's chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise Skipped("playwright is not installed") from exc
    home = Path(tempfile.mkdtemp(prefix="crystalrep-bench-"))
    rows = []
    try:
        for label in ("cold", "warm"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            proc = start_server(port=port, home=home, log_path=home / f"streamlit-{label}.log")
            try:
                wait_healthy(proc, url, timeout=120)
                healthy = time.perf_counter() - t0
                first, every = _open_maps(url, "cgcnn-random")
            finally:
                stop_server(proc)
                stop_background_tasks(home)
            for stage, impl, seconds in ((f"first map ({label})", "first map drawn (PCA)", first),
                                         (f"all maps ({label})", "PCA, UMAP and t-SNE drawn", every)):
                rows += [row(stage, impl, "ours", 1, healthy + seconds, "from `streamlit run`"),
                         row(stage, "server start (/_stcore/health)", "floor", 1, healthy)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    ours = {r["stage"]: r["seconds"] for r in rows if r["kind"] == "ours"}
    return [f"{label}: first map after {ours[f'first map ({label})']:.1f} s, all three after "
            f"{ours[f'all maps ({label})']:.1f} s." for label in ("cold", "warm")
            if f"first map ({label})" in ours and f"all maps ({label})" in ours]
