"""The Lecture page in presenter mode, in headless Chromium at 1024×768: every text readable and whole.

The lecture is prepared first (as "Prepare all sections" would), so each section opens without
computing. For each of the four sections the test looks at every element holding text in the
main area and fails on text smaller than 18 px, text cut by an ellipsis, text outside the
viewport's width, or text clipped by an ancestor that hides its overflow (a table losing a
column, a metric losing its value); plotly's SVG text is held to the same size. Screenshots of
each section land in ``screenshots/`` (gitignored). Skipped where no Chromium is installed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crystalrep.datasets import default_dataset_dir, load_dataset
from tests.app.e2e_utils import (
    CHROMIUM_ARGS,
    ROOT,
    chromium_path,
    free_port,
    start_server,
    stop_background_tasks,
    stop_server,
    wait_healthy,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(),
                                 reason="the built-in default dataset is not built")]

WIDTH, HEIGHT = 1024, 768
MIN_FONT_PX = 18.0
TIMEOUT_MS = 240_000
ENCODERS = ("cgcnn-random", "magpie", "soap", "chgnet")  # the sidebar's default choice
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
DATASET = "lecture_e2e"
SQUARES = ("CaTiO3", "CaMoO3", "SrMoO3", "SrTiO3", "BaTiO3", "BaZrO3", "SrZrO3")  # section 4 needs a square
# Every visible element with its own text in the main area, or plotly SVG text: what is wrong with it.
PROBLEMS_JS = """([minFont, width]) => {
  const out = [];
  const main = document.querySelector('[data-testid="stMain"]');
  const describe = (el, text) => `${el.tagName.toLowerCase()} "${text.slice(0, 40)}"`;
  const clippers = (el) => {
    const found = [];
    for (let a = el.parentElement; a && a !== main; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX !== 'visible' || s.overflowY !== 'visible') found.push(a);
    }
    return found;
  };
  for (const el of main.querySelectorAll('*')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim());
    if (!own.length || el.closest('svg') || el.closest('[role="tooltip"]')) continue;
    if (el.closest('[data-testid="stIconMaterial"]')) continue;  // an icon's ligature name, drawn as a glyph
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none' || !el.getClientRects().length) continue;
    const text = own.map(n => n.textContent.trim()).join(' ');
    const range = document.createRange();
    range.selectNodeContents(el);
    const box = range.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    if (parseFloat(style.fontSize) < minFont) out.push(`${describe(el, text)}: ${style.fontSize} text`);
    if (style.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1)
      out.push(`${describe(el, text)}: cut by an ellipsis`);
    if (box.left < -1 || box.right > width + 1) out.push(`${describe(el, text)}: outside the ${width} px viewport`);
    for (const a of clippers(el)) {
      const r = a.getBoundingClientRect();
      if (box.left < r.left - 1 || box.right > r.right + 1 || box.top < r.top - 1 || box.bottom > r.bottom + 1) {
        out.push(`${describe(el, text)}: clipped by ${a.tagName.toLowerCase()}.${a.className.toString().slice(0, 30)}`);
        break;
      }
    }
  }
  for (const t of main.querySelectorAll('.main-svg text')) {
    if (!t.textContent.trim() || !t.getClientRects().length) continue;
    const size = parseFloat(getComputedStyle(t).fontSize);
    if (size < minFont) out.push(`plot text "${t.textContent.trim().slice(0, 40)}": ${size}px`);
    const svg = t.closest('.main-svg').getBoundingClientRect(), b = t.getBoundingClientRect();
    if (b.left < svg.left - 1 || b.right > svg.right + 1 || b.top < svg.top - 1 || b.bottom > svg.bottom + 1)
      out.push(`plot text "${t.textContent.trim().slice(0, 40)}": outside its chart`);
  }
  return out;
}"""


def _browser_or_skip() -> str:
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CRYSTALREP_REQUIRE_BROWSER") == "1":
            pytest.fail("browser tests are required but chromium or playwright is missing")
        pytest.skip("no chromium or no playwright")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` over a home whose lecture (every 16th default crystal + a square) is prepared."""
    from crystalrep.encoders import available_encoders
    from crystalrep.lecture.prepare import Preparation
    from crystalrep.store import Store

    _browser_or_skip()
    home = tmp_path_factory.mktemp("lecture_home")
    default = load_dataset("default")
    table = default.table
    square = (table["prototype"] == "perovskite") & table["formula"].isin(SQUARES)
    rows = sorted(set(range(0, len(default), 16)) | {int(i) for i in square.to_numpy().nonzero()[0]})
    ds = default.subset(rows, name=DATASET)
    ds.save(home / "datasets" / DATASET)
    prep = Preparation(ds, list(ENCODERS), available=available_encoders(), store=Store(home))
    prep.run(prep.steps())
    port = free_port()
    proc = start_server(port=port, home=home, log_path=home / "streamlit.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        yield url
    finally:
        stop_server(proc)
        stop_background_tasks(home)


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_browser_or_skip(), args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        try:
            yield pg
        finally:
            browser.close()


def _idle(page: Any) -> None:
    time.sleep(0.5)  # let a click's rerun begin before waiting for it to end
    page.wait_for_selector(IDLE)
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0")
    page.wait_for_function("[...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                           ".every(e => e.querySelector('.main-svg'))")
    page.wait_for_selector(IDLE)


def _shot(page: Any, name: str) -> None:
    """The section as the room sees it, and the whole section (Streamlit scrolls inside its own container)."""
    shots = ROOT / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / f"{name}.png"))
    tall = int(page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight"))
    page.set_viewport_size({"width": WIDTH, "height": max(HEIGHT, tall)})
    _idle(page)
    page.screenshot(path=str(shots / f"{name}-whole.png"))
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    _idle(page)


def test_presenter_mode_at_1024x768_cuts_no_text(page: Any, server: str) -> None:
    page.goto(f"{server}/?dataset={DATASET}")
    _idle(page)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Lecture", exact=True).click()
    _idle(page)
    page.get_by_text("Presenter mode").click()
    _idle(page)
    assert page.locator("[data-testid='stSidebar']").is_hidden()  # the slide gets the whole width
    problems: dict[int, list[str]] = {}
    for section in range(1, 5):
        header = page.locator("[data-testid='stMain'] h2").first.inner_text()
        assert header.startswith(f"{section} ·"), header
        assert page.get_by_role("button", name="Run", exact=False).count() == 0  # prepared: nothing to press
        assert page.locator("[data-testid='stException']").count() == 0
        _shot(page, f"lecture-presenter-{section}-1024x768")
        found = page.evaluate(PROBLEMS_JS, [MIN_FONT_PX, WIDTH])
        if found:
            problems[section] = found
        if section < 4:
            page.get_by_role("button", name="Next").click()
            _idle(page)
    assert not problems, "\n".join(f"section {k}: {p}" for k, found in problems.items() for p in found)
