"""Caches that make a fresh server fast on a big dataset: stored map scores, misses not remembered, one label."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st
from pymatgen.core import Structure

from crystalrep.datasets import Dataset, save_dataset


@pytest.fixture
def ds(tiny_structures: list[Structure]) -> Dataset:
    structures = tiny_structures * 4
    out = Dataset.from_structures("twenty", [f"t{i}" for i in range(len(structures))], structures,
                                  properties={"kind": ["a", "b"] * (len(structures) // 2)})
    save_dataset(out)
    return out


def test_a_missing_embedding_is_not_remembered_and_other_hits_stay_cached() -> None:
    from crystalrep.embed import EMBEDDINGS_KIND
    from crystalrep.store import Store
    from ui import embeddings

    Store().save_array(EMBEDDINGS_KIND, "stored", np.ones((2, 3), np.float32), {})
    hit = embeddings._load("stored")
    with pytest.raises(embeddings._NotStored):
        embeddings._load("later")
    Store().save_array(EMBEDDINGS_KIND, "later", np.zeros((2, 3), np.float32), {})
    assert embeddings._load("later")[0].shape == (2, 3)  # the miss was not cached
    assert embeddings._load("stored") is hit  # and nothing else was dropped


def test_map_scores_are_read_back_from_the_store_by_a_fresh_server(ds: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis import map_quality
    from crystalrep.embed import embed_dataset
    from ui import cache, embeddings
    from ui import projections as maps

    ref = cache.dataset_ref("twenty")
    embed_dataset(ds, "magpie")
    panel = maps.Panel("magpie", "pca", (("standardize", True),), 0)
    ekey = embeddings.key(ref, "magpie")
    first = maps.scores(ref, panel, ekey, "kind")
    assert first.label == "kind" and first.n == len(ds) and 0 <= first.trustworthiness <= 1
    st.cache_data.clear()
    st.cache_resource.clear()  # a fresh server: only the store remains
    def scored_again(*args: object, **kwargs: object) -> None:
        raise RuntimeError("scored again")

    monkeypatch.setattr(map_quality, "score_map", scored_again)
    assert maps.scores(ref, panel, ekey, "kind") == first
    with pytest.raises(RuntimeError, match="scored again"):  # other label values: another key
        maps.scores(ref, panel, ekey, None)


def test_one_picker_label_is_the_one_in_the_whole_list(ds: Dataset) -> None:
    from ui import cache
    from ui import retrieval as rv

    ref = cache.dataset_ref("twenty")
    assert [rv.row_label(ref, i) for i in range(len(ds))] == rv.labels(ref)
