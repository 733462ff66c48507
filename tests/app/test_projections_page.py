"""The Projections page under AppTest: maps in one figure, background UMAP/t-SNE, URL state, linked exploration.

Background starts are recorded instead of spawned; where a map must land, the recorded
``crystalrep`` command is run in-process (t-SNE only: UMAP's numba compile takes a minute).
Clicks and lassos need a browser (``test_explore_browser.py``); here they arrive the way a
shared link carries them, in the URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.jobs import background

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
def small() -> Dataset:
    ds = load_dataset("default").subset(range(0, 1886, 40), name="maps48")
    save_dataset(ds)
    return ds


def _page(dataset: str, encoders: list[str], params: dict[str, Any] | None = None) -> AppTest:
    st.cache_data.clear()  # cached arrays would outlive this test's CRYSTALREP_HOME
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["crystalrep.dataset"] = dataset
    at.session_state["crystalrep.encoders"] = encoders
    at.query_params.update(params or {})
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "warning")
                     for e in getattr(at, kind))


def _maps(at: AppTest) -> dict[str, Any]:
    """The map figure (the page's first chart) as plotly JSON."""
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _panels(fig: dict[str, Any]) -> int:
    return sum(1 for k in fig["layout"] if k.startswith("xaxis"))


def _method(argv: list[str]) -> str:
    return argv[argv.index("--method") + 1]


def test_pca_is_drawn_and_missing_maps_start_in_the_background(small: Dataset, starts: list[list[str]]) -> None:
    at = _page("maps48", ["magpie"])
    assert len(at.get("plotly_chart")) == 1 and _panels(_maps(at)) == 1  # PCA; UMAP and t-SNE are pending
    assert sorted(_method(a) for a in starts) == ["tsne", "umap"]
    assert all(a[:5] == ["project", "--dataset", "maps48", "--encoder", "magpie"] for a in starts)
    text = _text(at)
    assert "**PCA**" in text and "trustworthiness" in text and "in the background" in text
    assert "standardised features" in text and "All 48 crystals are drawn" in text

    tsne = next(a for a in starts if _method(a) == "tsne")
    assert main(tsne) == 0  # what the background task would run: it stores the map the page asks for
    at.run()
    fig = _maps(at)
    assert _panels(fig) == 2 and fig["layout"]["xaxis2"]["title"]["text"] == "t-SNE 1"
    assert "**t-SNE**" in _text(at) and "perplexity=15" in _text(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Coordinates (CSV)" in labels and "chemiscope dataset" in labels


def test_seed_colour_standardise_and_method_change_what_is_drawn(small: Dataset, starts: list[list[str]]) -> None:
    at = _page("maps48", ["magpie", "cgcnn-random"])
    before = _maps(at)
    at.selectbox(key="maps.colour").set_value("crystal_system").run()
    assert _maps(at) != before and "separation by crystal system" in _text(at)
    assert {t["name"] for t in _maps(at)["data"]} >= {"cubic", "hexagonal"}  # one trace per class
    at.toggle(key="maps.standardize").set_value(False).run()
    assert "raw features (centred, not scaled)" in _text(at)
    at.number_input(key="maps.seed").set_value(7).run()
    assert any("--seed" in a and a[a.index("--seed") + 1] == "7" for a in starts)
    assert "seed 7" in _text(at) and at.query_params["seed"] == "7" and at.query_params["std"] == "0"
    at.radio(key="maps.mode").set_value("compare encoders").run()
    at.selectbox(key="maps.method").set_value("pca").run()
    assert not at.exception and _panels(_maps(at)) == 2 and _text(at).count("**PCA**") == 2


@pytest.mark.slow
def test_four_encoders_are_all_drawn_in_one_figure(small: Dataset, starts: list[list[str]]) -> None:
    encoders = ["magpie", "soap", "cgcnn-random", "chgnet"]
    at = _page("maps48", encoders, {"mode": "compare encoders", "method": "pca"})
    fig = _maps(at)
    assert len(at.get("plotly_chart")) == 1 and _panels(fig) == 4
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert all(any(e in t for t in titles) for e in encoders)
    assert _text(at).count("**PCA**") == 4 and "Showing the first" not in _text(at)


def test_a_link_restores_the_view(small: Dataset, starts: list[list[str]]) -> None:
    params = {"mode": "compare encoders", "method": "pca", "colour": "crystal_system", "seed": "3", "std": "0",
              "size": "8", "clip": "5", "prop": "density", "q": "O"}
    at = _page("maps48", ["magpie", "cgcnn-random"], params)
    assert at.radio(key="maps.mode").value == "compare encoders"
    assert at.selectbox(key="maps.method").value == "pca"
    assert at.selectbox(key="maps.colour").value == "crystal_system"
    assert at.number_input(key="maps.seed").value == 3 and at.toggle(key="maps.standardize").value is False
    assert at.slider(key="maps.size").value == 8 and at.text_input(key="maps.q").value == "O"
    assert "seed 3" in _text(at) and "raw features" in _text(at)
    with_o = sum("O" in {e.symbol for e in s.composition.elements} for s in small.structures())  # O: oxygen
    assert f"{with_o} crystals match “O”" in _text(at)
    search = [t for t in _maps(at)["data"] if t["name"] == "search match"]
    assert len(search) == 2 and len(search[0]["customdata"]) == with_o
    for key, value in {**params, "dataset": "maps48", "encoders": "magpie,cgcnn-random"}.items():
        assert at.query_params[key] == value, key  # and the page writes it back for the next link
    # an invalid value falls back to the default instead of failing
    at = _page("maps48", ["magpie"], {"colour": "no-such-column", "seed": "-4", "mode": "sideways"})
    assert at.number_input(key="maps.seed").value == 0 and at.radio(key="maps.mode").value == "compare methods"


def test_a_focused_crystal_shows_structure_properties_and_ringed_neighbours(small: Dataset,
                                                                           starts: list[list[str]]) -> None:
    focus = small.ids[7]
    at = _page("maps48", ["magpie"], {"focus": focus, "nk": "4", "show": "bonds,polyhedra"})
    fig = _maps(at)
    layers = {t["name"]: t for t in fig["data"] if t["name"] in ("clicked crystal", "nearest neighbours")}
    assert set(layers) == {"clicked crystal", "nearest neighbours"}
    assert layers["clicked crystal"]["customdata"][0][0] == focus and len(layers["nearest neighbours"]["customdata"]) == 4
    structure = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert structure["data"][-1]["name"] == "cell" and any(t["name"].endswith("bonds") for t in structure["data"])
    props = next(df.value for df in at.dataframe if "property" in df.value.columns)
    assert props.set_index("property").loc["id", "value"] == focus
    near = next(df.value for df in at.dataframe if "distance" in df.value.columns)
    assert len(near) == 4 and focus not in set(near["id"])
    ringed = {row[0] for row in layers["nearest neighbours"]["customdata"]}
    assert ringed == set(near["id"])  # the table and the rings are the same crystals
    at.slider(key="maps.nk").set_value(6).run()
    assert at.query_params["nk"] == "6" and len(next(df.value for df in at.dataframe if "distance" in df.value)) == 6
    at.button(key="maps.clear_focus").click().run()
    assert "focus" not in at.query_params and len(at.get("plotly_chart")) == 1


def test_a_selection_in_the_link_is_a_table_ringed_in_the_map(small: Dataset, starts: list[list[str]]) -> None:
    chosen = [small.ids[i] for i in (2, 5, 11)]
    at = _page("maps48", ["magpie"], {"sel": chosen})
    table = next(df.value for df in at.dataframe if "row" in df.value.columns)
    assert sorted(table["id"]) == sorted(chosen) and "space group" in table.columns
    ring = next(t for t in _maps(at)["data"] if t["name"] == "selected")
    assert sorted(row[0] for row in ring["customdata"]) == sorted(chosen)
    labels = {b.key for b in at.get("download_button")}
    assert {"maps.sel_download.csv", "maps.sel_download.parquet"} <= labels
    assert at.query_params["sel"] == chosen or sorted(at.query_params["sel"]) == sorted(chosen)
    at.button(key="maps.clear_sel").click().run()
    assert "sel" not in at.query_params and not any("row" in df.value.columns for df in at.dataframe)


def test_a_five_crystal_dataset_gets_pca_only(tiny_structures: list[Structure], starts: list[list[str]]) -> None:
    save_dataset(Dataset.from_structures("five", [f"t{i}" for i in range(5)], tiny_structures))
    at = _page("five", ["magpie"])
    assert _panels(_maps(at)) == 1 and not starts
    assert "only PCA is offered" in _text(at) and "needs at least 10 crystals" in _text(at)


def test_every_usable_encoder_is_drawn_and_refused_ones_make_room() -> None:
    from ui.projections import Panel, View

    panels = [Panel(e, "pca", (), 0) for e in ("a", "b", "c", "d", "e")]
    view = View(panels, "density", False, 0.0, 5.0)
    live, note = view.live({"a", "b", "c", "d", "e"})
    assert [p.encoder for p in live] == ["a", "b", "c", "d", "e"] and note == ""
    live, note = view.live({"a", "c", "e"})  # b and d could not embed the dataset
    assert [p.encoder for p in live] == ["a", "c", "e"]


def test_sweep_starts_in_the_background_then_draws_one_image(small: Dataset, starts: list[list[str]]) -> None:
    at = _page("maps48", ["magpie"])
    at.radio(key="maps.sweep.method").set_value("tsne").run()
    at.button(key="maps.sweep.run").click().run()
    sweep = next(a for a in starts if a[0] == "sweep")
    assert sweep[:2] == ["sweep", "--dataset"] and "--grid" in sweep
    assert sweep[sweep.index("--grid") + 1] == "perplexity=5" and sweep[sweep.index("--seeds") + 1] == "0,1,2"
    assert at.query_params["sw_method"] == "tsne" and at.query_params["sw_perplexity"] == "5"
    assert main(sweep) == 0
    at.run()
    assert not at.exception and len(at.get("image")) == 1
    sweep_table = next(df.value for df in at.dataframe if "trustworthiness" in df.value.columns)
    assert len(sweep_table) == 1 and sweep_table["trustworthiness"].between(0, 1).all()


def test_a_failed_background_map_says_why_and_offers_a_retry(small: Dataset, starts: list[list[str]],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    failed = background.TaskState("failed", "crystalrep: the embedding contains NaN values.", 0.0, 1.0, 2)
    monkeypatch.setattr(background, "state", lambda key: failed)
    at = _page("maps48", ["magpie"])
    assert not starts  # a failed task is not restarted on its own
    errors = [e.value for e in at.error]
    assert sum("contains NaN values" in e for e in errors) == 3  # UMAP, t-SNE and the last sweep
    at.button(key=next(b.key for b in at.button if b.key.startswith("maps.retry."))).click().run()
    assert len(starts) == 1 and starts[0][0] == "project"
