"""End to end, in headless Chromium: linked exploration, shareable links and exports on the map pages.

A click on a map point shows that crystal's structure and rings its neighbours; a box selection
lists the crystals and downloads them; a link restores a view; the HTML export draws its plot
with the network blocked; the chemiscope download loads with chemiscope's reader. Screenshots
of Projections, Clusters and Retrieval at 1400 px and 1024×768 land in ``screenshots/``.
Skipped without Chromium or the built-in dataset, unless ``CRYSTALREP_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from crystalrep.datasets import DEFAULT_NAME, Dataset, default_dataset_dir, load_dataset
from tests.app.e2e_utils import (
    CHROMIUM_ARGS,
    POINTS_JS,
    ROOT,
    TRACES_JS,
    chromium_path,
    free_port,
    start_server,
    stop_background_tasks,
    stop_server,
    wait_healthy,
    wait_idle,
)

pytestmark = pytest.mark.e2e
TIMEOUT_MS = 180_000
NAME = "explore"
MAP = "magpie"  # one fast encoder: the maps are what is tested here
READY_JS = ("(i) => { const gd = document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')[i];"
            " return !!gd && !!gd._fullLayout && gd._fullLayout.clickmode === 'event+select'; }")
PAGES = {"maps": "focus", "clustering": "focus", "neighbours": "crystal"}  # page -> URL param a click sets
PCA_ONLY = "mode=compare+encoders&method=pca"  # no UMAP/t-SNE in the background while clicking
HIGHLIGHTS = ("clicked crystal", "nearest neighbours", "selected", "search match")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CRYSTALREP_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required (CRYSTALREP_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def data() -> Dataset:
    if not (default_dataset_dir() / "meta.json").is_file():
        pytest.skip("data/default is not built")
    full = load_dataset(DEFAULT_NAME)
    return full.subset(range(0, len(full), 9), name=NAME)  # ~210 real crystals


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Dataset) -> Iterator[str]:
    if chromium_path() is None:
        _skip_or_fail("no chromium found at /usr/bin/chromium or on PATH")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("explore_home")
    data.save(home / "datasets" / NAME)
    port = free_port()
    log_path = home / "streamlit.log"
    proc = start_server(port=port, home=home, log_path=log_path)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    except RuntimeError as exc:
        pytest.fail(f"{exc} Server log:\n{log_path.read_text(errors='replace')[-3000:]}")
    finally:
        stop_server(proc)
        stop_background_tasks(home)


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        # The fresh server's first session is a deep link: with the scripts in views/ (not pages/,
        # which Streamlit treats as legacy multipage pages) it must not flash "Page not found".
        first = chromium.new_page()
        first.goto(f"{server}/dataset?dataset={NAME}&encoders={MAP}", timeout=TIMEOUT_MS)
        wait_idle(first, timeout_ms=TIMEOUT_MS)
        not_found = first.get_by_text("Page not found").count()
        first.close()
        assert not_found == 0, "the first deep link on a fresh server said 'Page not found'"
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        yield pg
    finally:
        context.close()


def _open(page: Any, server: str, path: str, query: str = "", *, encoders: str = MAP) -> None:
    page.goto(f"{server}/{path}?dataset={NAME}&encoders={encoders}" + (f"&{query}" if query else ""))
    _settle(page)


def _key(key: str) -> str:
    """CSS selector of the element Streamlit made for a widget key."""
    return ".st-key-" + key.replace(".", "-")


def _settle(page: Any, *, maps_timeout_ms: int = TIMEOUT_MS) -> None:
    wait_idle(page, timeout_ms=TIMEOUT_MS)
    # maps computing in the background rerun the page when they land: wait for the last of them
    page.wait_for_function("!document.querySelector('[data-testid=\"stMain\"]').innerText"
                           ".includes('Computing the')", timeout=maps_timeout_ms)
    wait_idle(page, timeout_ms=TIMEOUT_MS)
    page.wait_for_function(READY_JS, arg=0)  # Streamlit has armed the chart's click selection
    assert page.locator("[data-testid='stException']").count() == 0, page.locator("[data-testid='stException']").first.inner_text()


def _params(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def _layers(page: Any) -> dict[str, list[str]]:
    """Map trace name -> crystal ids, for the highlight layers of the page's map (first panel)."""
    out: dict[str, list[str]] = {}
    for t in page.evaluate(TRACES_JS, 0):
        if t["name"] in HIGHLIGHTS and t["name"] not in out:
            out[t["name"]] = t["ids"]
    return out


def _click(page: Any, point: dict[str, Any]) -> None:
    page.mouse.move(point["x"] - 6, point["y"] - 6)
    page.mouse.move(point["x"], point["y"])
    page.wait_for_timeout(300)  # plotly picks the hovered point on mouse move
    page.mouse.down()
    page.mouse.up()


def _lonely(points: list[dict[str, Any]]) -> dict[str, Any]:
    """A point with no other point within 12 px, so the click can only mean it."""
    for p in points:
        if all((p is q) or (p["x"] - q["x"]) ** 2 + (p["y"] - q["y"]) ** 2 > 144 for q in points):
            return p
    raise AssertionError("every point of the map has a neighbour within 12 px")


def _shot(page: Any, name: str) -> None:
    shots = ROOT / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("path", list(PAGES))
def test_a_click_shows_the_structure_and_rings_the_neighbours(page: Any, server: str, data: Dataset,
                                                              path: str) -> None:
    _open(page, server, path, PCA_ONLY if path == "maps" else "")
    charts = page.locator("[data-testid='stPlotlyChart']").count()
    before = _params(page).get(PAGES[path], [None])[0]  # Retrieval starts with a query crystal
    points = [p for p in page.evaluate(POINTS_JS, [0, None]) if p["trace"] not in HIGHLIGHTS]
    target = _lonely([p for p in points if p["custom"][5] == 0 and p["custom"][0] != before])
    _click(page, target)
    page.wait_for_function("([k, v]) => new URLSearchParams(location.search).get(k) === v",
                           arg=[PAGES[path], target["custom"][0]])
    _settle(page)
    clicked = _params(page)[PAGES[path]][0]
    assert clicked == target["custom"][0]  # the crystal under the pointer, by id
    layers = _layers(page)
    assert layers["clicked crystal"] == [clicked]
    neighbours = layers["nearest neighbours"]
    assert neighbours and clicked not in neighbours
    table = page.locator("[data-testid='stDataFrame']")
    assert table.count() >= 2  # properties + neighbours (Retrieval: neighbours + spread)
    scenes = page.locator("[data-testid='stPlotlyChart'] .gl-container")
    assert scenes.count() >= 2  # the map's WebGL layer and the 3-D structure
    assert page.locator("[data-testid='stPlotlyChart']").count() > charts or path == "neighbours"
    if path != "neighbours":  # Retrieval's table holds k=10 of them; the maps page's k defaults to 5
        assert len(neighbours) == 5
    _shot(page, f"explore-click-{path}")


def test_a_box_selection_is_a_table_ringed_in_every_map_and_downloads(page: Any, server: str, data: Dataset,
                                                                      tmp_path: Path) -> None:
    _open(page, server, "maps", PCA_ONLY, encoders=f"{MAP},cgcnn-random")  # two maps side by side
    points = [p for p in page.evaluate(POINTS_JS, [0, None]) if p["custom"][5] == 0]
    xs, ys = sorted(p["x"] for p in points), sorted(p["y"] for p in points)
    x0, x1 = xs[len(xs) // 4], xs[len(xs) // 2]  # a box over part of the first panel
    y0, y1 = ys[len(ys) // 4], ys[3 * len(ys) // 4]

    def within(p: dict[str, Any], margin: float) -> bool:
        return x0 - margin <= p["x"] <= x1 + margin and y0 - margin <= p["y"] <= y1 + margin

    loose = {p["custom"][0] for p in points if within(p, 3)}
    strict = {p["custom"][0] for p in points if within(p, -3)}
    page.mouse.move(x0, y0)
    page.locator("[data-testid='stPlotlyChart'] .modebar-btn[data-title='Box Select']").first.click()
    page.mouse.move(x0 - 1, y0 - 1)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1 + 1, y1 + 1, steps=5)
    page.mouse.up()
    page.wait_for_function("location.search.includes('sel=')")
    _settle(page)
    selected = set(_params(page)["sel"])
    assert strict <= selected <= loose  # exactly the crystals inside the box (edges aside)
    assert page.get_by_text(f"Selection: {len(selected)} crystal").count() == 1
    rings = [t for t in page.evaluate(TRACES_JS, 0) if t["name"] == "selected"]
    assert len(rings) == 2 and all(set(r["ids"]) == selected for r in rings)  # ringed in both maps
    with page.expect_download() as info:
        page.locator(_key("maps.sel_download.csv") + " [data-testid^='stBaseButton']:visible").click()
    path = tmp_path / "selection.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert {r["id"] for r in rows} == selected and all(r["row"] for r in rows)
    with page.expect_download() as info:
        page.locator(_key("maps.sel_download.parquet") + " [data-testid^='stBaseButton']:visible").click()
    import pandas as pd

    parquet = pd.read_parquet(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert set(parquet["id"]) == selected
    _shot(page, "explore-selection-maps")


def test_a_link_restores_the_view(page: Any, server: str, data: Dataset) -> None:
    focus, chosen = data.ids[20], [data.ids[3], data.ids[4]]
    query = (f"{PCA_ONLY}&colour=crystal_system&seed=4&std=0&size=7&focus={focus}"
             f"&sel={chosen[0]}&sel={chosen[1]}&q=Ba&show=bonds,polyhedra&cell=2")
    _open(page, server, "maps", query)
    assert page.locator(_key("maps.mode")).get_by_role("radio", name="compare encoders").is_checked()
    assert page.locator(_key("maps.seed") + " input").input_value() == "4"
    assert page.locator(_key("maps.colour") + " input").input_value() == "crystal system"
    assert page.locator(_key("maps.q") + " input").input_value() == "Ba"
    assert page.locator(_key("maps.cell") + " input").input_value() == "2×2×2 cell"
    layers = _layers(page)
    assert layers["clicked crystal"] == [focus] and sorted(layers["selected"]) == sorted(chosen)
    assert layers["search match"] and all("Ba" in data.table.set_index("id").loc[i, "formula"]
                                          for i in layers["search match"])
    assert page.get_by_text("Selection: 2 crystals").count() == 1
    assert page.get_by_text("raw features (centred, not scaled)").count() >= 1 and page.get_by_text("seed 4").count()
    structure = page.evaluate(TRACES_JS, 1)
    assert any(t["name"].endswith("polyhedra") or t["name"].endswith("bonds") for t in structure)
    # a change goes straight back into the link
    seed = page.locator(_key("maps.seed") + " input")
    seed.fill("5")
    seed.press("Enter")
    page.wait_for_function("location.search.includes('seed=5')")
    _settle(page)
    assert _params(page)["focus"] == [focus]


def test_the_html_export_draws_its_plot_with_the_network_blocked(page: Any, server: str, browser: Any,
                                                                 tmp_path: Path) -> None:
    _open(page, server, "maps", PCA_ONLY)
    page.locator("[data-testid='stPopoverButton']").filter(has_text="Export figure").click()
    with page.expect_download() as info:
        page.locator(_key("maps.export.html") + " [data-testid^='stBaseButton']:visible").click()
    path = tmp_path / "map.html"
    info.value.save_as(path)
    offline = browser.new_context()
    blocked: list[str] = []

    def only_files(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    offline.route("**/*", only_files)
    view = offline.new_page()
    view.goto(path.as_uri())
    view.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    drawn = view.evaluate("() => { const gd = document.querySelector('.js-plotly-plot');"
                          " return gd._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0); }")
    offline.close()
    assert drawn >= 1 and not [u for u in blocked if "plotly" in u]  # plotly.js came from the file itself


def test_the_chemiscope_download_loads_with_chemiscopes_reader(page: Any, server: str, data: Dataset,
                                                               tmp_path: Path) -> None:
    chemiscope = pytest.importorskip("chemiscope")
    import json

    _open(page, server, "maps", PCA_ONLY)
    with page.expect_download() as info:
        page.locator(_key("maps.chemiscope") + " [data-testid^='stBaseButton']:visible").click()
    path = tmp_path / "explore.chemiscope.json.gz"
    info.value.save_as(path)
    loaded = json.loads(chemiscope.show_input(str(path)).value)
    assert len(loaded["structures"]) == len(data)
    maps = [k for k in loaded["properties"] if k.startswith(f"{MAP} PCA") and k.endswith("[1]")]
    assert maps, "the page's stored PCA map is in the file"
    assert loaded["properties"]["id"]["values"] == data.ids


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(1400, 2600), (1024, 768)])
def test_screenshots_of_the_map_pages(browser: Any, server: str, data: Dataset, width: int, height: int) -> None:
    """Every map page with a clicked crystal and a selection; at 1024×768 one shot per screenful that matters."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    focus = data.ids[20]
    try:
        for path in PAGES:
            query = f"{PAGES[path]}={focus}&sel={data.ids[3]}&sel={data.ids[4]}&sel={data.ids[5]}"
            page.goto(f"{server}/{path}?dataset={NAME}&encoders={MAP}&{query}")
            _settle(page, maps_timeout_ms=600_000)  # the first UMAP compiles numba for a minute or two
            assert page.get_by_text("Page not found").count() == 0
            if width >= 1400:
                _shot(page, f"explore-{path}-{width}")
                continue
            charts = page.locator("[data-testid='stPlotlyChart']")
            for name, target in (("top", None), ("map", charts.first), ("structure", charts.nth(1))):
                if target is not None:
                    target.scroll_into_view_if_needed()
                    page.wait_for_timeout(300)
                page.screenshot(path=str(ROOT / "screenshots" / f"explore-{path}-{width}-{name}.png"))
    finally:
        context.close()


def test_the_first_page_answers_at_its_own_path_and_at_the_root(page: Any, server: str) -> None:
    for path in ("dataset", ""):
        page.goto(f"{server}/{path}?dataset={NAME}&encoders={MAP}")
        wait_idle(page, timeout_ms=TIMEOUT_MS)
        assert page.get_by_text("Page not found").count() == 0, path
        assert NAME in page.locator("[data-testid='stMain'] h1").first.inner_text()
        assert urlparse(page.url).path == "/dataset"  # the root opens the Data page at its own, shareable path
        assert _params(page)["dataset"] == [NAME]


@pytest.mark.slow
def test_png_and_svg_downloads_come_from_the_system_chromium(page: Any, server: str, tmp_path: Path) -> None:
    _open(page, server, "clustering")
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<svg")):
        page.locator("[data-testid='stPopoverButton']").filter(has_text="Export figure").click()
        with page.expect_download(timeout=120_000) as info:
            page.locator(_key(f"clusters.export.{fmt}") + " [data-testid^='stBaseButton']:visible").click()
        data = Path(info.value.path()).read_bytes()
        assert data.startswith(magic) and len(data) > 10_000, fmt
        page.keyboard.press("Escape")
