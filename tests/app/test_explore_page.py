"""Linked exploration at scale under AppTest: the crystal picker is a search (at most 50 matches) that focuses a
crystal, and a map above its point budget draws a sample over a density image and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.jobs import background
from crystalrep.plots.projections import figure_points
from crystalrep.plots.structures import search_rows
from ui import explore, map_controls

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/projections.py"
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="no default dataset")


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(background, "start", lambda argv, *, key: calls.append(list(argv)))
    return calls


@pytest.fixture
def quarter() -> Dataset:
    ds = load_dataset("default").subset(range(0, 1886, 4), name="maps472")
    save_dataset(ds)
    return ds


def _page(params: dict[str, Any]) -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["crystalrep.dataset"] = "maps472"
    at.session_state["crystalrep.encoders"] = ["magpie"]
    at.query_params.update(params)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_the_picker_lists_at_most_50_matches_and_focuses_the_one_picked(quarter: Dataset,
                                                                          starts: list[list[str]]) -> None:
    at = _page({"q": "O", "mode": "compare encoders", "method": "pca"})
    hits = search_rows(quarter, "O")
    assert len(hits) > explore.MAX_PICKS  # the element matches far more crystals than the picker lists
    picker = at.selectbox(key="maps.pick")
    assert len(picker.options) == explore.MAX_PICKS and picker.value is None
    row = int(hits[5])
    picker.set_value(row).run()
    assert at.query_params["focus"] == quarter.ids[row]
    assert any(quarter.ids[row] in str(h.value) for h in at.subheader)  # the focus panel shows it
    ring = next(t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"] if t["name"] == "clicked crystal")
    assert ring["customdata"][0][0] == quarter.ids[row]
    at.text_input(key="maps.q").set_value("no-such-crystal").run()
    assert not [s for s in at.selectbox if s.key == "maps.pick"]
    assert "0 crystals match" in "\n".join(str(c.value) for c in at.caption)


def test_above_the_budget_the_map_draws_a_sample_over_a_density_image(quarter: Dataset, starts: list[list[str]],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(map_controls, "BUDGETS", (50, 100, 200))
    monkeypatch.setattr(map_controls, "POINT_BUDGET", 200)
    monkeypatch.setattr(map_controls, "BUDGET_SHOWN", 50)
    at = _page({"pts": "100", "mode": "compare encoders", "method": "pca", "focus": quarter.ids[3]})
    assert at.select_slider(key="maps.points").value == 100
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure_points(fig) <= 100 and len(fig["layout"]["images"]) == 1
    drawn = fig["layout"]["meta"]["points_drawn"]
    assert any(f"{drawn} of {len(quarter)} points drawn" in a["text"] for a in fig["layout"]["annotations"])
    base = [t for t in fig["data"] if t["name"] not in ("clicked crystal", "nearest neighbours")]
    assert quarter.ids[3] in {row[0] for t in base for row in t["customdata"]}  # the focus is always drawn
    text = "\n".join(str(c.value) for c in at.caption)
    assert f"the same {drawn} of {len(quarter)} crystals" in text
    at.select_slider(key="maps.points").set_value(200).run()
    assert at.query_params["pts"] == "200"
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["meta"]["points_drawn"] > drawn
