"""The Projections page under AppTest: PCA drawn in the page, UMAP/t-SNE started in the background.

Background starts are recorded instead of spawned; where a map must land, the recorded
``crystalrep`` command is run in-process (t-SNE only: UMAP's numba compile takes a minute).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.jobs import background

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "pages/projections.py"
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


def _page(dataset: str, encoders: list[str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["crystalrep.dataset"] = dataset
    at.session_state["crystalrep.encoders"] = encoders
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "warning")
                     for e in getattr(at, kind))


def _charts(at: AppTest) -> list[str]:
    return [el.proto.spec for el in at.get("plotly_chart")]


def _method(argv: list[str]) -> str:
    return argv[argv.index("--method") + 1]


def test_pca_is_drawn_and_missing_maps_start_in_the_background(small: Dataset, starts: list[list[str]]) -> None:
    at = _page("maps48", ["magpie"])
    assert len(_charts(at)) == 1  # PCA; UMAP and t-SNE are pending
    assert sorted(_method(a) for a in starts) == ["tsne", "umap"]
    assert all(a[:5] == ["project", "--dataset", "maps48", "--encoder", "magpie"] for a in starts)
    text = _text(at)
    assert "**PCA**" in text and "trustworthiness" in text and "in the background" in text
    assert "All 48 crystals are drawn" in text

    tsne = next(a for a in starts if _method(a) == "tsne")
    assert main(tsne) == 0  # what the background task would run: it stores the map the page asks for
    at.run()
    assert len(_charts(at)) == 2 and "**t-SNE**" in _text(at) and "perplexity=15" in _text(at)
    assert len(at.get("download_button")) == 1


def test_seed_colour_and_method_change_what_is_drawn(small: Dataset, starts: list[list[str]]) -> None:
    at = _page("maps48", ["magpie", "cgcnn-random"])
    before = _charts(at)
    at.selectbox(key="maps.colour").set_value("crystal_system").run()
    assert _charts(at) != before and "separation by crystal system" in _text(at)
    at.number_input(key="maps.seed").set_value(7).run()
    assert any("--seed" in a and a[a.index("--seed") + 1] == "7" for a in starts)
    assert "seed 7" in _text(at)
    at.radio(key="maps.mode").set_value("compare encoders").run()
    at.selectbox(key="maps.method").set_value("pca").run()
    text = _text(at)
    assert not at.exception and len(_charts(at)) == 2
    assert text.count("**PCA**") == 2


def test_sweep_starts_in_the_background_then_draws_one_image(small: Dataset, starts: list[list[str]]) -> None:
    at = _page("maps48", ["magpie"])
    at.radio(key="maps.sweep.method").set_value("tsne").run()
    at.button(key="maps.sweep.run").click().run()
    sweep = next(a for a in starts if a[0] == "sweep")
    assert sweep[:2] == ["sweep", "--dataset"] and "--grid" in sweep
    assert sweep[sweep.index("--grid") + 1] == "perplexity=5" and sweep[sweep.index("--seeds") + 1] == "0,1,2"
    assert main(sweep) == 0
    at.run()
    assert not at.exception and len(at.get("image")) == 1
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 1 and at.dataframe[0].value["trustworthiness"].between(0, 1).all()


def test_a_five_crystal_dataset_gets_pca_only(tiny_structures: list[Structure], starts: list[list[str]]) -> None:
    save_dataset(Dataset.from_structures("five", [f"t{i}" for i in range(5)], tiny_structures))
    at = _page("five", ["magpie"])
    assert len(_charts(at)) == 1 and not starts
    assert "only PCA is offered" in _text(at) and "needs at least 10 crystals" in _text(at)


def test_at_most_three_live_maps_and_refused_encoders_make_room() -> None:
    from ui.projections import MAX_LIVE, Panel, View

    panels = [Panel(e, "pca", (), 0) for e in ("a", "b", "c", "d", "e")]
    view = View(panels, "density", False, 0.0, 5.0)
    live, note = view.live({"a", "b", "c", "d", "e"})
    assert [p.encoder for p in live] == ["a", "b", "c"] and len(live) == MAX_LIVE
    assert "first 3 of 5" in note
    live, note = view.live({"a", "c", "e"})  # b and d could not embed the dataset
    assert [p.encoder for p in live] == ["a", "c", "e"] and note == ""


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
