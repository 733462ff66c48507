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
PAGE = "pages/lecture.py"
HAS_DEFAULT = (default_dataset_dir() / "meta.json").is_file()
SQUARE = ("aflow-AB3C_cP5_221_a_c_b", "perovskite-CaMoO3", "perovskite-SrMoO3", "perovskite-SrTiO3",
          "perovskite-CaReO3", "perovskite-SrReO3")  # CaTiO3 − CaMoO3 + SrMoO3 ≈ SrTiO3, and with Re
ENCODERS = ["magpie", "cgcnn-random"]


@pytest.fixture(autouse=True)
def _quick_invariance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ui.lecture.INVARIANCE_N", 4)  # the page runs in this process: keep section 1 quick

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


def _r2(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric if m.label.startswith("Probe R²")}


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning") for e in getattr(at, kind))


@pytest.mark.skipif(not HAS_DEFAULT, reason="the built-in default dataset is not built")
def test_sections_run_on_demand_on_a_default_subset(subset: str) -> None:
    at = _lecture(subset)
    assert not at.exception
    assert not at.metric and not at.dataframe  # nothing computed before a Run button is pressed

    r2 = _r2(_run(at, 2))
    assert len(r2) == 2 and "Probe R² · cell size only" in r2
    assert all(np.isfinite(float(v.split(" ± ")[0])) for v in r2.values())  # two computed numbers
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
    assert at.dataframe  # the invariance table still runs on five crystals


def test_verdicts_say_what_the_numbers_show() -> None:
    import pandas as pd

    from ui import lecture_verdicts as lecture

    clean, busy = {"separation": 0.6, "trustworthiness": 0.99}, {"separation": 0.3, "trustworthiness": 0.97}
    shown = lecture.contrast_verdict("energy", "chgnet", 0.02, 0.85, clean, busy)
    assert "at least as clean" in shown and "R² 0.02" in shown and "0.85 from chgnet" in shown
    known = lecture.contrast_verdict("volume", "chgnet", 0.88, 0.9, clean, busy)
    assert "does not show the effect" in known
    assert "less clean" in lecture.contrast_verdict("energy", "chgnet", 0.02, 0.85, busy, clean)

    grid = pd.DataFrame({"embedding": ["cgcnn-random", "cgcnn@job1", "magpie"], "r2_mean": [0.3, 0.7, 0.5],
                         "r2_std": [0.05, 0.05, 0.05]})
    assert "cgcnn@job1 beats random weights" in lecture.pretraining_verdict(grid, ["cgcnn@job1"])
    grid.loc[1, "r2_mean"] = 0.32
    assert "no evidence that pretraining helped" in lecture.pretraining_verdict(grid, ["cgcnn@job1"])

    summary = pd.DataFrame({"encoder": ["cgcnn-random", "magpie"], "analogies": [10, 10],
                            "answer ranked 1st": [100.0, 80.0], "median residual": [0.02, 0.2],
                            "beats answering a or c": [100.0, 90.0]})
    assert "That is a network with random weights" in lecture.analogy_verdict(summary)
