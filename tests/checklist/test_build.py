"""The reproducibility checklist: red on an empty store, green item by item as evidence lands."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from crystalrep.checklist.build import VIEWS_KIND, Checklist, build_checklist, record_view
from crystalrep.checklist.items import corpus_of
from crystalrep.datasets import Dataset, load_dataset
from crystalrep.store import Store

ENCODERS = ["magpie", "cgcnn-random"]


@pytest.fixture(scope="module")
def small() -> Dataset:
    """48 crystals of the default dataset, every chemical system distinct (grouped folds work)."""
    return load_dataset("default").subset(range(0, 1886, 40), name="small")


def _state(checklist: Checklist) -> list[bool]:
    return [item.ok for item in checklist.items]


def test_empty_store_is_all_red_with_a_next_step(small: Dataset) -> None:
    checklist = build_checklist(small, ENCODERS, "density")
    assert _state(checklist) == [False] * 5 and checklist.passed == 0
    assert [i.number for i in checklist.items] == [1, 2, 3, 4, 5]
    for item in checklist.items:
        assert item.finding.endswith(".") and item.todo, item
    assert "crystalrep embed --dataset small --encoder magpie,cgcnn-random" in checklist.items[0].todo
    assert "crystalrep probe" in checklist.items[4].todo and "magpie" in checklist.items[4].todo
    assert checklist.provenance == ()


def test_items_turn_green_as_the_store_fills(small: Dataset) -> None:
    from crystalrep.analysis.probes import compare
    from crystalrep.analysis.projections import cache_key, project_cached
    from crystalrep.embed import embed_dataset

    store = Store()
    keys = {}
    for name in ENCODERS:
        X, meta = embed_dataset(small, name, store=store)
        keys[name] = meta["key"]
    checklist = build_checklist(small, ENCODERS, "density")
    assert _state(checklist) == [True, False, False, False, False]
    first = checklist.items[0].evidence
    assert [r["encoder"] for r in first] == ENCODERS and all(r["embedding stored"] for r in first)
    assert first[0]["pretraining corpus"] == "none: a fixed descriptor, no training"
    assert "random initialisation (seed 0)" in first[1]["pretraining corpus"]
    assert first[1]["embedding key"] == keys["cgcnn-random"]

    proj = project_cached(X, keys["cgcnn-random"], method="pca", seed=0, store=store)
    checklist = build_checklist(small, ENCODERS, "density")
    assert _state(checklist)[:3] == [True, True, False]
    row = checklist.items[1].evidence[0]
    assert row["method"] == "pca" and row["seed"] == 0 and "scikit-learn" in row["versions"] and row["stored"]

    record_view(small, encoder="cgcnn-random", embedding_key=keys["cgcnn-random"], method="pca", seed=0,
                colour="volume_per_atom", scale="linear")
    checklist = build_checklist(small, ENCODERS, "density")
    assert not checklist.items[2].ok and "not by density" in checklist.items[2].finding
    view = record_view(small, encoder="cgcnn-random", embedding_key=keys["cgcnn-random"], method="pca",
                       params={}, seed=0, colour="density", scale="log", clip=(1, 99))
    assert view.projection_key == cache_key(keys["cgcnn-random"], proj.spec)
    checklist = build_checklist(small, ENCODERS, "density")
    assert _state(checklist)[:3] == [True, True, True]
    assert "log scale" in checklist.items[2].finding and "1–99 percentile" in checklist.items[2].finding
    assert {p["colour"] for p in checklist.provenance} == {"density", "volume_per_atom"}
    assert all(p["projection_stored"] and p["versions"] for p in checklist.provenance)

    compare(small, "density", ENCODERS, split="random", store=store)
    checklist = build_checklist(small, ENCODERS, "density")
    assert _state(checklist) == [True, True, True, True, False]
    assert "no other encoder" not in checklist.items[4].finding
    compare(small, "density", ENCODERS, split="grouped", store=store)
    checklist = build_checklist(small, ENCODERS, "density")
    assert _state(checklist) == [True] * 5 and checklist.passed == 5
    fifth = checklist.items[4]
    assert {r["encoder"] for r in fifth.evidence} == set(ENCODERS)
    assert {r["split"] for r in fifth.evidence} == {"grouped"} and all(r["folds"] == 5 for r in fifth.evidence)
    assert all(store.verified("probes", r["key"]) for r in fifth.evidence)

    other = build_checklist(small, ENCODERS, "volume_per_atom")  # evidence is per property
    assert _state(other) == [True, True, True, False, False]  # its view was recorded above

    text = checklist.to_json()
    again = Checklist.from_json(text)
    assert again == checklist and json.loads(text)["items"][4]["ok"] is True
    md = checklist.to_markdown()
    assert "5 of 5 items hold" in md and "## 5. ✅ Chemistry-disjoint probe with a Magpie baseline" in md
    assert keys["magpie"] in md and "## Figures' provenance" in md and view.projection_key in md


def test_record_view_is_idempotent_and_validated(small: Dataset) -> None:
    store = Store()
    args = {"encoder": "magpie", "embedding_key": "abc123", "method": "umap", "colour": "density"}
    first = record_view(small, params={"n_neighbors": "15"}, **args)
    second = record_view(small, params={}, **args)  # defaults filled in: the same view
    assert first == second and store.keys(VIEWS_KIND) == [first.key]
    assert first.params["n_neighbors"] == 15 and first.seed == 0 and first.scale == "linear" and first.clip is None
    saved = json.loads((store.path(VIEWS_KIND, first.key) / "view.json").read_text())
    assert saved["colour"] == "density" and saved["recorded"]
    for bad in ({"scale": "sqrt"}, {"clip": (99, 1)}, {"colour": "nope"}, {"method": "mds"}):
        with pytest.raises(ValueError):
            record_view(small, **{**args, **bad})


def test_categorical_property_cannot_be_probed(small: Dataset) -> None:
    assert small.properties["prototype"].kind == "categorical"
    checklist = build_checklist(small, ["magpie"], "prototype")
    assert not checklist.items[3].ok and "Choose a numeric property" in checklist.items[3].todo
    assert checklist.items[4].evidence == ()


def test_no_encoder_chosen_is_red(small: Dataset) -> None:
    checklist = build_checklist(small, [], "density")
    assert checklist.items[0].finding == "No encoder is chosen." and not checklist.items[0].ok


def test_corpus_of_a_checkpoint_comes_from_its_metadata() -> None:
    meta = {"task": "denoise", "dataset": "perov", "dataset_fingerprint": "f" * 64, "seed": 3, "epochs": 7,
            "job_id": "denoise-1"}
    text, ok = corpus_of("cgcnn@denoise-1", SimpleNamespace(checkpoint_meta=meta))
    assert ok and text == "denoise pretraining on perov (fingerprint ffffffffffff), seed 3, 7 epochs, job denoise-1"
    text, ok = corpus_of("cgcnn@abc", SimpleNamespace(checkpoint_meta={"task": "masking"}))
    assert not ok and text.startswith("not recorded")
    assert corpus_of("chgnet", SimpleNamespace(model_name="0.3.0")) == ("MPtrj via CHGNet 0.3.0 weights", True)
