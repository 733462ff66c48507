"""Browse every dashboard page on a big dataset in headless Chromium and save a screenshot of each.

Starts ``streamlit run app.py`` on 127.0.0.1 with ``CRYSTALREP_HOME`` = the scaling store
(``$CRYSTALREP_SCALE_HOME``, see :mod:`benchmarks.bench_pages_scale`), opens each page with the
dataset and magpie in the URL, waits until the page is idle (or ``--wait`` seconds), and writes
``screenshots/scale_<N>k/<page>.png`` (a 2,600 px tall window: Streamlit scrolls inside the page, so a
"full page" shot is only the window) plus ``points.json``: seconds to idle and the points each
page's plotly charts hold in the browser (``gd._fullData``). The Projections page is opened in
"compare encoders" mode with PCA, so no UMAP/t-SNE of 200k crystals starts in the background.

Usage: ``python -m benchmarks.browse_scale [--dataset scale200k] [--wait 240] [--size 1024x768]`` (other
sizes go to ``screenshots/scale_<N>k_<W>x<H>/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_pages_scale import scale_home

ROOT = Path(__file__).resolve().parents[1]
EXTRA = {"maps": "&mode=compare+encoders&method=pca"}
# one more look at the map: a categorical colour and the smallest budget, so the density layer shows between points
SHOTS = (("maps-family-10k", "maps", "&mode=compare+encoders&method=pca&colour=family&pts=10000"),)
POINTS_JS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')].map(
  gd => (gd._fullData || []).reduce((s, t) => s + (t.x ? t.x.length : 0), 0))"""
log = logging.getLogger(__name__)


def browse(dataset: str, *, wait_s: float, width: int = 1400, height: int = 2600,
           only: list[str] | None = None) -> dict[str, Any]:
    """Screenshot every page; seconds to idle and points per chart."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from tests.app.e2e_utils import (
        CHROMIUM_ARGS,
        chromium_path,
        free_port,
        start_server,
        stop_background_tasks,
        stop_server,
        wait_healthy,
        wait_idle,
    )
    from ui import PAGES

    home = scale_home()
    folder = ROOT / "screenshots" / f"scale_{dataset.removeprefix('scale')}"
    if (width, height) != (1400, 2600):
        folder = folder.with_name(f"{folder.name}_{width}x{height}")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port=port, home=home, log_path=Path(tmp) / "server.log")
        try:
            wait_healthy(server, url)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": width, "height": height})
                visits = [(f"{i + 1}-{p.url_path}", p.url_path, EXTRA.get(p.url_path, "")) for i, p in enumerate(PAGES)]
                for name, path, extra in [v for v in [*visits, *SHOTS] if only is None or v[0] in only or v[1] in only]:
                    start = time.perf_counter()
                    page.goto(f"{url}/{path}?dataset={dataset}&encoders=magpie{extra}")
                    try:
                        wait_idle(page, timeout_ms=int(wait_s * 1000))
                        idle = round(time.perf_counter() - start, 1)
                    except PlaywrightTimeout:
                        idle = None
                    points = page.evaluate(POINTS_JS)
                    shot = folder / f"{name}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    results[name] = {"seconds_to_idle": idle, "points_per_chart": points, "png": shot.name}
                    log.info("%s: idle after %s s, points %s", name, idle, points)
                browser.close()
        finally:
            stop_server(server)
            stop_background_tasks(home)
    index = folder / "points.json"
    previous = json.loads(index.read_text()) if index.is_file() else {}
    index.write_text(json.dumps({**previous, **results}, indent=1))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.browse_scale``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="scale200k")
    parser.add_argument("--wait", type=float, default=240.0, help="seconds a page may take to become idle")
    parser.add_argument("--only", nargs="*", default=None, help="shots to take, by name (5-clustering) or page (clustering); default: all")
    parser.add_argument("--size", default="1400x2600", help="window WIDTHxHEIGHT, e.g. 1024x768 (a projector)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("CRYSTALREP_SCALE_HOME", str(scale_home()))
    width, height = (int(v) for v in args.size.lower().split("x"))
    browse(args.dataset, wait_s=args.wait, width=width, height=height, only=args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
