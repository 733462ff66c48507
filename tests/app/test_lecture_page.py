"""The Lecture page under AppTest: it opens without computing, each section runs on demand, widgets matter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/lecture.py"
HAS_DEFAULT = (default_dataset_dir() / "meta.json").is_file()
SQUARE = ("aflow-AB3C_cP5_221_a_c_b", "perovskite-CaMoO3", "perovskite-SrMoO3", "perovskite-SrTiO3",
          "perovskite-CaReO3", "perovskite-SrReO3")  # CaTiO3 − CaMoO3 + SrMoO3 ≈ SrTiO3, and with Re
ENCODERS = ["magpie", "cgcnn-random"]


@pytest.fixture(autouse=True)
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str]]:
    """Fresh Streamlit caches, section 1 on 4 crystals, and background tasks recorded instead of started."""
    import streamlit as st

    monkeypatch.syspath_prepend(str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setattr("ui.lecture.INVARIANCE_N", 4)  # the page runs in this process: keep section 1 quick
    calls: list[tuple[list[str], str]] = []
    monkeypatch.setattr("crystalrep.jobs.background.start", lambda argv, *, key: calls.append((list(argv), key)))
    return calls

@pytest.fixture
def subset() -> str:
    """~50 default crystals: every 40th row plus a perovskite analogy square, saved as 'lecture-sub'."""
    ds = load_dataset("default")
    ids = ds.table["id"].tolist()
    rows = sorted(set(range(0, len(ds), 40)) | {ids.index(i) for i in SQUARE})
    save_dataset(ds.subset(rows, name="lecture-sub"))
    return "lecture-sub"


@pytest.fixture
def tiny(tiny_structures: list[Structure]) -> str:
    ds = Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures,
                                 properties={"volume": [s.volume for s in tiny_structures]})
    save_dataset(ds)
    return "tiny"


def _lecture(dataset: str) -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DATASET] = dataset
    at.session_state[state.ENCODERS] = ENCODERS
    at.run()
    return at.switch_page(PAGE).run()


def _run(at: AppTest, section: int) -> AppTest:
    at.button(key=f"lecture.run.{section}").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _r2(at: AppTest) -> list[str]:
    """Probe R² cards in order: the cell-size control, then the best encoder."""
    return [m.value for m in at.metric if m.label == "Probe R²"]


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning") for e in getattr(at, kind))


@pytest.mark.skipif(not HAS_DEFAULT, reason="the built-in default dataset is not built")
def test_sections_run_on_demand_on_a_default_subset(subset: str) -> None:
    at = _lecture(subset)
    assert not at.exception
    assert not at.metric and not at.dataframe and not at.table  # nothing computed before a Run button is pressed

    r2 = _r2(_run(at, 2))
    assert len(r2) == 2 and "**cell size only**" in _text(at)
    assert all(np.isfinite(float(v.split(" ± ")[0].replace("−", "-"))) for v in r2)  # two computed numbers
    assert "cell size alone" in _text(at).lower()

    before, prop = _r2(at), at.selectbox(key="lecture.prop")
    other = next(p for p in prop.options if p != prop.value and p != "n_elements")
    prop.set_value(other).run()
    assert not at.exception and _r2(at) != before  # the property drives the probes

    _run(at, 1)
    assert "invariant" in _text(at) or "changes under" in _text(at)
    _run(at, 4)
    assert at.selectbox(key="lecture.family").value == "perovskite"
    tables = [d.value for d in at.dataframe]
    assert any("rank of the answer" in t.columns for t in tables)
    assert "SrTiO3" in at.selectbox(key="lecture.analogy").format_func(at.selectbox(key="lecture.analogy").value)


def test_every_section_is_polite_on_five_crystals(tiny: str) -> None:
    at = _lecture(tiny)
    for section in (1, 2, 3, 4):
        _run(at, section)
    text = _text(at)
    assert "needs at least 20 crystals" in text
    assert "No analogy square here" in text
    assert at.table  # the invariance table (HTML: its six columns wrap) still runs on five crystals


def test_presenter_mode_shows_one_section_per_screen(tiny: str) -> None:
    at = _lecture(tiny)
    assert [h.value for h in at.header][:2] == ["1 · Same crystal, same vector?", "2 · Pretty t-SNE, dead downstream"]
    at.toggle(key="lecture.presenter").set_value(True).run()
    assert not at.exception
    assert [h.value for h in at.header] == ["1 · Same crystal, same vector?"]
    assert at.button(key="lecture.prev").disabled
    _run(at, 1)
    assert at.table and not at.dataframe  # presenter tables are HTML, which wraps instead of scrolling
    at.button(key="lecture.next").click().run()
    assert [h.value for h in at.header] == ["2 · Pretty t-SNE, dead downstream"]
    at.selectbox(key="lecture.section").set_value(3).run()
    assert [h.value for h in at.header] == ["4 · Latent arithmetic and interpolation"]
    at.button(key="lecture.next").click().run()
    assert [h.value for h in at.header] == ["5 · Does pretraining help? The CDSSL study"]
    assert at.button(key="lecture.next").disabled


def test_present_link_opens_presenter_mode(tiny: str) -> None:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DATASET] = tiny
    at.session_state[state.ENCODERS] = ENCODERS
    at.query_params["present"] = "1"
    at.run()
    at.switch_page(PAGE).run()
    assert at.toggle(key="lecture.presenter").value and len(at.header) == 1


def test_prepare_starts_the_background_task_with_an_estimate(tiny: str,
                                                              started: list[tuple[list[str], str]]) -> None:
    at = _lecture(tiny)
    button = at.button(key="lecture.prepare")
    assert button.label.startswith("Prepare all sections in the background (about ")
    assert "embed magpie" in _text(at) and "invariance cgcnn-random" in _text(at)
    button.click().run()
    assert not at.exception
    assert [argv for argv, _ in started] == [["lecture", "prepare", "--dataset", tiny, "--encoders",
                                              ",".join(ENCODERS)]]
    assert started[0][1].startswith("lecture-")


@pytest.mark.slow
def test_a_prepared_lecture_opens_every_section_without_waiting(tiny: str) -> None:
    from crystalrep.encoders import available_encoders
    from crystalrep.lecture.prepare import Preparation

    available = available_encoders(include_checkpoints=True)
    prep = Preparation(load_dataset(tiny), ENCODERS, available=available)
    steps = prep.steps()
    assert any(s.label == "embed magpie" for s in steps)
    prep.run(steps)
    assert Preparation(load_dataset(tiny), ENCODERS, available=available).steps() == []
    at = _lecture(tiny)
    assert not at.exception
    assert not [b for b in at.button if str(b.key).startswith("lecture.run.")]  # nothing left to press
    assert "All four sections are prepared" in _text(at)
    assert at.table  # section 1's invariance table, read from the store
