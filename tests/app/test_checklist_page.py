"""The Checklist page under AppTest: red on an empty store, green with evidence, exports offered."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, load_dataset, save_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/checklist.py"
ENCODERS = ["magpie", "cgcnn-random"]


@pytest.fixture
def small() -> Dataset:
    ds = load_dataset("default").subset(range(0, 1886, 40), name="small")
    save_dataset(ds)
    return ds


def _page(prop: str = "density") -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "small"
    at.session_state[state.ENCODERS] = ENCODERS
    at.session_state[state.PROPERTY] = prop
    at.run()
    return at.switch_page(PAGE).run()


def _headers(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("#### ")]


def _downloads(at: AppTest) -> dict[str, object]:
    return {el.proto.label: el for el in at.get("download_button")}


def test_empty_store_shows_five_red_items_with_next_steps(small: Dataset) -> None:
    at = _page()
    assert not at.exception, [e.message for e in at.exception]
    headers = _headers(at)
    assert len(headers) == 5 and all("missing" in h for h in headers)
    assert "0 of 5 items hold" in at.get("progress")[0].proto.text
    todos = [e.value for e in at.info]
    assert any("crystalrep embed --dataset small --encoder magpie,cgcnn-random" in t for t in todos)
    assert any("No map of this dataset" in t for t in todos)
    assert set(_downloads(at)) == {"Download as Markdown", "Download as JSON"}


def test_evidence_turns_items_green(small: Dataset) -> None:
    from crystalrep.analysis.probes import compare
    from crystalrep.analysis.projections import project_cached
    from crystalrep.checklist.build import record_view
    from crystalrep.embed import embed_dataset

    keys = {}
    for name in ENCODERS:
        X, meta = embed_dataset(small, name)
        keys[name] = meta["key"]
    project_cached(X, keys["cgcnn-random"], method="pca", seed=0)
    record_view(small, encoder="cgcnn-random", embedding_key=keys["cgcnn-random"], method="pca", seed=0,
                colour="density", scale="linear", clip=(2, 98))
    compare(small, "density", ENCODERS, split="grouped")
    at = _page()
    assert not at.exception, [e.message for e in at.exception]
    assert all("evidence stored" in h for h in _headers(at))
    assert "5 of 5 items hold" in at.get("progress")[0].proto.text
    tables = [df.value for df in at.dataframe]
    assert any("embedding key" in t.columns and set(t["embedding key"]) == set(keys.values()) for t in tables)
    provenance = next(t for t in tables if "projection_key" in t.columns)
    assert provenance["colour"].tolist() == ["density"] and provenance["clip"].tolist() == ["[2.0, 98.0]"]

    at.selectbox(key="crystalrep.property").select("volume_per_atom").run()  # another view: no probe, no map
    assert not at.exception
    states = ["evidence stored" in h for h in _headers(at)]
    assert states == [True, True, False, False, False]
    assert set(_downloads(at)) == {"Download as Markdown", "Download as JSON"}
