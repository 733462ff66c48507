"""The Lecture's CDSSL section: one sentence with the command without a report; the report's numbers with one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, save_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/lecture.py"
TITLE = "5 · Does pretraining help? The CDSSL study"


@pytest.fixture
def tiny(tiny_structures) -> str:
    ds = Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures,
                                 properties={"volume": [s.volume for s in tiny_structures]})
    save_dataset(ds)
    return "tiny"


def _lecture(dataset: str) -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DATASET] = dataset
    at.session_state[state.ENCODERS] = ["magpie"]
    at.run()
    at = at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _study_text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning") for e in getattr(at, kind))


def test_without_a_report_the_section_says_how_to_make_one(tiny: str) -> None:
    from crystalrep.study import load_report

    assert load_report() is None  # the test's own empty CRYSTALREP_HOME
    at = _lecture(tiny)
    assert TITLE in [h.value for h in at.header]
    info = [i.value for i in at.info if "pretraining study" in i.value]
    assert len(info) == 1 and "`crystalrep study cdssl --budget-minutes 120`" in info[0]
    assert not at.metric


@pytest.mark.slow
@pytest.mark.shared
def test_a_smoke_reports_numbers_are_shown(tiny: str, shared_data: Path) -> None:
    """Runs the real smoke study (~2-3 min on 2 busy cores) into the test's CRYSTALREP_HOME, then opens the page."""
    from crystalrep.cli.main import main
    from crystalrep.study import load_report

    assert main(["study", "cdssl", "--smoke", "--shared-data", str(shared_data)]) == 0
    report = load_report()
    assert report is not None and report["smoke"]
    at = _lecture(tiny)
    counts = report["verdict"]["counts"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["SSL better than random init"] == f"{counts['better']} of {counts['total']}"
    assert metrics["SSL worse"] == f"{counts['worse']} of {counts['total']}"
    assert metrics["Within the spread"] == f"{counts['within']} of {counts['total']}"
    text = _study_text(at)
    assert "smoke run" in text and f"`{report['command']}`" in text
    assert f"{report['corpus']['n']:,} unlabelled crystals" in text
    took = re.search(r"planned ([0-9.]+) min, took ([0-9.]+) min", text)
    assert took and float(took[2]) == pytest.approx(report["budget"]["actual_minutes"]["total"], abs=0.06)
    results = next(d.value for d in at.dataframe if "evaluation" in d.value.columns)
    assert {"random", *report["plan"]["tasks"]} <= set(results.columns)
    assert len(results) == len({(r["evaluation"], r["backbone"], r["split"], r["n"]) for r in report["table"]})
    first = report["table"][0]
    row = results[(results["evaluation"] == first["evaluation"]) & (results["backbone"] == first["backbone"])
                  & (results["split"] == first["split"])].iloc[0]
    assert row[first["init"]].startswith(f"{first['mae_mean']:.3f}")
