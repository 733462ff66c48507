"""End to end: the dashboard served by ``streamlit run`` and driven in headless Chromium.

Skipped where no Chromium is installed (a user's laptop), unless ``CRYSTALREP_REQUIRE_BROWSER=1``
(``.ci/run`` sets it), where a missing browser fails. Screenshots land in ``screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Structure

from crystalrep.datasets import (
    DEFAULT_NAME,
    Dataset,
    PropertyInfo,
    default_dataset_dir,
    load_dataset,
)
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

pytestmark = pytest.mark.e2e

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TIMEOUT_MS = 90_000
# every plotly chart has drawn its SVG layer and every table its canvas
DRAWN = ("[...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')].every(e => e.querySelector('.main-svg'))"
         " && [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')].every(e => e.querySelector('canvas'))")
E2E = "e2e"  # the dataset every page is visited on (chosen by the ?dataset= link)
BROKEN_CIF = b"data_broken\n_cell_length_a 4.0\n_cell_length_b abc\nloop_\n_atom_site_label\nNa1\n"


def _require_browser() -> str:
    path = chromium_path()
    reason = ""
    if path is None:
        reason = "no chromium found at /usr/bin/chromium or on PATH (install Debian's `chromium`)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed"
    if reason:
        if os.environ.get("CRYSTALREP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required (CRYSTALREP_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(reason)
    return str(path)


@pytest.fixture(autouse=True)
def _importable_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_structures: list[Structure]) -> Iterator[str]:
    """``streamlit run app.py`` on a free port, with a tiny dataset in its own CRYSTALREP_HOME."""
    _require_browser()
    home = tmp_path_factory.mktemp("e2e_home")
    ds = Dataset.from_structures(
        "tiny", [f"t{i}" for i in range(len(tiny_structures))], tiny_structures,
        properties={"volume": [s.volume for s in tiny_structures]},
        property_info={"volume": PropertyInfo("volume", unit="Å^3", description="cell volume")},
        meta={"source": "tests/conftest.py tiny_structures", "license": "CC0", "description": "Five tiny crystals."},
    )
    ds.save(home / "datasets" / "tiny")
    if (default_dataset_dir() / "meta.json").is_file():  # every 9th default crystal: small, but real
        default = load_dataset(DEFAULT_NAME)
        default.subset(range(0, len(default), 9), name=E2E).save(home / "datasets" / E2E)
    else:
        ds.save(home / "datasets" / E2E)
    port = free_port()
    log_path = home / "streamlit.log"
    proc = start_server(port=port, home=home, log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        yield url
    except RuntimeError as exc:
        pytest.fail(f"{exc} Server log:\n{log_path.read_text(errors='replace')[-3000:]}")
    finally:
        stop_server(proc)
        stop_background_tasks(home)


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=_require_browser(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # tall viewport: Streamlit scrolls inside its own container, so full_page alone misses the bottom
    context = browser.new_context(viewport={"width": 1400, "height": 1900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        yield pg
    finally:
        context.close()


def _wait_idle(page: Any) -> None:
    """Wait until the script has run to the end and the charts have drawn."""
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=TIMEOUT_MS)
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stSpinner\"]').length === 0")
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_function(DRAWN, timeout=TIMEOUT_MS)


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    shots = ROOT / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def _page_urls(server: str) -> list[tuple[str, str]]:
    from ui import PAGES

    return [(p.url_path, server + "/" + ("" if i == 0 else p.url_path) + f"?dataset={E2E}")
            for i, p in enumerate(PAGES)]


def test_every_page_renders_without_exception(page: Any, server: str, tmp_path: Path) -> None:
    for name, url in _page_urls(server):
        page.goto(url)
        _wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0, f"exception on page {name}"
        assert page.get_by_text("Page not found").count() == 0, f"page {name} was not found at {url}"
        _screenshot(page, name, tmp_path)


def test_data_page_draws_the_dataset(page: Any, server: str) -> None:
    page.goto(server + "/?dataset=tiny")
    _wait_idle(page)
    assert "tiny" in page.locator("[data-testid='stMain'] h1").first.inner_text()
    page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg")
    assert page.locator("[data-testid='stPlotlyChart']").count() == 2
    assert page.locator("[data-testid='stDataFrame']").count() == 2  # structures + embeddings


def _import(page: Any, filename: str, data: bytes, name: str) -> None:
    page.get_by_text("Import a dataset").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": filename, "mimeType": "chemical/x-cif", "buffer": data}])
    page.wait_for_selector("[data-testid='stFileChip'], [data-testid='stFileUploaderFile']")
    _wait_idle(page)
    name_box = page.get_by_role("textbox", name="Dataset name")
    name_box.fill(name)
    name_box.press("Enter")
    _wait_idle(page)
    page.get_by_role("button", name=re.compile(r"^Import$")).click()


def test_broken_cif_upload_shows_an_error(page: Any, server: str, tmp_path: Path) -> None:
    page.goto(server + "/")
    _wait_idle(page)
    _import(page, "broken.cif", BROKEN_CIF, "broken")
    error = page.locator("[data-testid='stAlertContentError']")
    error.wait_for()
    _wait_idle(page)
    assert error.inner_text().strip().endswith(".")
    assert page.locator("[data-testid='stException']").count() == 0
    _screenshot(page, "data-import-error", tmp_path)


def test_valid_cif_upload_imports_a_dataset(page: Any, server: str, tiny_structures: list[Structure],
                                            tmp_path: Path) -> None:
    pytest.importorskip("crystalrep.importers.api", reason="crystalrep.importers.api has not landed yet")
    from pymatgen.io.cif import CifWriter

    page.goto(server + "/")
    _wait_idle(page)
    _import(page, "SrTiO3.cif", str(CifWriter(tiny_structures[3])).encode(), "e2e_upload")
    page.locator("[data-testid='stAlertContentSuccess']").wait_for()
    _wait_idle(page)
    assert "e2e_upload" in page.locator("[data-testid='stMain'] h1").first.inner_text()
    assert page.locator("[data-testid='stException']").count() == 0
    _screenshot(page, "data-import-success", tmp_path)
