"""The Probes page under AppTest: cards hold the library's numbers, widgets change them, bad cases get one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import (
    Dataset,
    PropertyInfo,
    default_dataset_dir,
    load_dataset,
    save_dataset,
)
from tests.conftest import with_californium

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/probes.py"
ENCODERS = ["magpie", "cgcnn-random"]
pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(), reason="data/default is not built")


@pytest.fixture
def small() -> Dataset:
    """80 crystals of the default dataset plus a Cf crystal (Z = 98, which SOAP refuses)."""
    return with_californium(list(range(0, len(load_dataset("default")), 24)), "small")


def _probes(dataset: str, encoders: list[str], prop: str | None = None) -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DATASET] = dataset
    at.session_state[state.ENCODERS] = encoders
    if prop is not None:
        at.session_state[state.PROPERTY] = prop
    at.run()
    return at.switch_page(PAGE).run()


def _metrics(at: AppTest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def _text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error") for e in getattr(at, kind))


def test_cards_show_the_library_scores_on_the_same_folds(small: Dataset) -> None:
    from crystalrep.analysis.probes import compare
    from crystalrep.plots.probes import pm

    at = _probes("small", ENCODERS, "density")
    assert not at.exception, [e.message for e in at.exception]
    expected = compare(small, "density", ENCODERS, split="random")
    metrics = _metrics(at)
    assert metrics["R²"] == [pm(r, s) for r, s in zip(expected["r2_mean"], expected["r2_std"], strict=True)]
    assert len(metrics["MAE (g/cm³)"]) == 2
    text = _text(at)
    assert "**magpie**" in text and "**cgcnn-random**" in text
    labelled = int(small.table["density"].notna().sum())  # the added Cf crystal has no label
    assert f"n = {labelled} labelled" in text and "5 folds" in text
    assert "PCA map silhouette by crystal system" in text
    assert len(at.get("plotly_chart")) == 1  # the learning curve (N = 50 fits in 64 training rows)
    assert "N = 100, 200, 500, 1000 left out" in text


def test_split_and_element_change_the_scores(small: Dataset) -> None:
    at = _probes("small", ["magpie"], "density")
    random_r2 = _metrics(at)["R²"]
    at.segmented_control(key="probes.split").set_value("grouped").run()
    assert not at.exception
    assert _metrics(at)["R²"] != random_r2
    at.segmented_control(key="probes.split").set_value("element").run()
    picker = at.selectbox(key="probes.element")
    assert picker.value == "O"  # the most common element comes first
    first = _metrics(at)["R²"]
    picker.select(picker.options[1].split(" ")[0]).run()
    assert not at.exception
    assert _metrics(at)["R²"] != first
    assert "1 fold" in _text(at)
    assert all(v.endswith("(1 fold)") and "±" not in v for v in _metrics(at)["R²"])  # no "± 0.00" for one fold


def test_compare_splits_adds_a_random_vs_grouped_table(small: Dataset) -> None:
    at = _probes("small", ENCODERS, "density")
    assert not [df for df in at.dataframe if "R² grouped" in df.value.columns]
    at.checkbox(key="probes.compare_splits").check().run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "R² grouped" in df.value.columns)
    assert table["encoder"].tolist() == ENCODERS and "R² random" in table.columns


def test_a_refusing_encoder_is_left_out_with_one_sentence(small: Dataset) -> None:
    at = _probes("small", ["magpie", "soap"], "density")
    assert not at.exception, [e.message for e in at.exception]
    assert any("soap cannot embed this dataset" in w.value for w in at.warning)
    assert len(_metrics(at)["R²"]) == 1


def test_categorical_property_is_declined_politely(small: Dataset) -> None:
    at = _probes("small", ["magpie"], "prototype")
    assert not at.exception
    assert "categorical" in at.info[0].value and "numeric" in at.info[0].value
    assert not at.metric


def test_five_crystals_cannot_be_probed_with_five_folds(tiny_structures: list[Structure]) -> None:
    ds = Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures,
                                 properties={"volume": [s.volume for s in tiny_structures]},
                                 property_info={"volume": PropertyInfo("volume", unit="Å^3")})
    save_dataset(ds)
    at = _probes("tiny", ["magpie"], "volume")
    assert not at.exception
    assert "cannot be probed" in at.info[0].value and "5 labelled crystals" in at.info[0].value


def test_badge_appears_when_the_verdict_flags(small: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    from crystalrep.lecture import verdicts
    at = _probes("small", ["magpie"], "density")
    assert "pretty map, dead probe" not in _text(at)  # magpie reads density well (R² > 0.2)
    # A planted verdict that calls every map separated and every probe dead:
    monkeypatch.setattr(verdicts, "pretty_map_dead_probe", partial(verdicts.pretty_map_dead_probe, separated=-1.0, dead=2.0))
    at.run()
    assert not at.exception
    badges = [m for m in at.markdown if "pretty map, dead probe" in m.value]
    assert len(badges) == 1 and "silhouette ≥ -1" in badges[0].help and "R² < 2" in badges[0].help
