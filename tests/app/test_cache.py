"""ui.cache: figures shared by every session, and the store check that spares building encoders."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, save_dataset
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture
def tiny(tiny_structures: list[Structure]) -> Dataset:
    ds = Dataset.from_structures("tiny", [f"t{i}" for i in range(len(tiny_structures))], tiny_structures,
                                 properties={"volume": [s.volume for s in tiny_structures]})
    save_dataset(ds)
    return ds


def _store_embedding(fingerprint: str | None, key: str) -> None:
    from crystalrep.embed import EMBEDDINGS_KIND
    from crystalrep.store import Store

    meta = {} if fingerprint is None else {"dataset_fingerprint": fingerprint}
    Store().save_array(EMBEDDINGS_KIND, key, np.zeros((2, 3), np.float32), meta)


def test_has_embeddings_reads_only_the_dataset_fingerprints(tiny: Dataset) -> None:
    from ui import cache

    ref = cache.dataset_ref("tiny")
    assert not cache.has_embeddings(ref)
    _store_embedding("another-dataset", "k1")
    assert not cache.has_embeddings(ref)
    _store_embedding(tiny.fingerprint, "k2")
    assert cache.has_embeddings(ref)


def test_a_meta_without_fingerprint_sends_the_page_to_the_exact_check(tiny: Dataset) -> None:
    from ui import cache

    _store_embedding(None, "old")
    assert cache.has_embeddings(cache.dataset_ref("tiny"))


def test_figures_are_built_once_and_shared(tiny: Dataset) -> None:
    from ui import cache

    ref = cache.dataset_ref("tiny")
    first = cache.element_figure(ref, log=False, font_px=12)
    assert cache.element_figure(ref, log=False, font_px=12) is first  # no per-session copy
    assert all(t.textfont.size == 12 for t in first.data if t.type == "heatmap")
    assert cache.histogram_figure(ref, "volume") is cache.histogram_figure(ref, "volume")


def test_the_data_page_builds_no_encoder_when_nothing_is_stored(tiny: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import state

    built: list[str] = []

    def record(name: str, **kwargs: object) -> object:
        built.append(name)
        raise RuntimeError("no encoder should be built")

    monkeypatch.setattr("crystalrep.encoders.get_encoder", record)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[state.DATASET] = "tiny"
    at.session_state[state.ENCODERS] = ["cgcnn-random", "magpie"]
    at.run()
    assert not at.exception and built == []
    table = next(df.value for df in at.dataframe if "stored" in df.value.columns)
    assert table["stored"].tolist() == ["not yet", "not yet"]
    _store_embedding(tiny.fingerprint, "k")  # something of this dataset is stored: the exact check runs
    at.run()
    assert built and at.exception
