"""The dashboard under Streamlit's AppTest: every page runs, widgets change the output, uploads fail politely.

Plotly charts are opaque to AppTest, so figures are checked in tests/test_plots.py; here the
chart's JSON spec is only compared before and after a widget change.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pymatgen.core import Structure
from streamlit.testing.v1 import AppTest

from crystalrep.datasets import Dataset, PropertyInfo, default_dataset_dir, save_dataset

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 60


HAS_DEFAULT = (default_dataset_dir() / "meta.json").is_file()
BROKEN_CIF = b"data_broken\n_cell_length_a 4.0\n_cell_length_b abc\nloop_\n_atom_site_label\nNa1\n"


@pytest.fixture
def tiny(tiny_structures: list[Structure]) -> Dataset:
    """A five-crystal dataset with two numeric properties, saved into the temporary CRYSTALREP_HOME."""
    ds = Dataset.from_structures(
        "tiny", [f"t{i}" for i in range(len(tiny_structures))], tiny_structures,
        properties={"volume": [s.volume for s in tiny_structures], "nsites_x2": [2.0 * len(s) for s in tiny_structures]},
        property_info={"volume": PropertyInfo("volume", unit="Å^3", description="cell volume")},
        meta={"source": "tests/conftest.py tiny_structures", "license": "CC0", "description": "Five tiny crystals."},
    )
    save_dataset(ds)
    return ds


def _app(dataset: str | None = None) -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if dataset is not None:
        at.session_state[state.DATASET] = dataset
    return at.run()


def _page_specs() -> list[tuple[str, str]]:
    from ui import PAGES

    return [(p.path, p.title) for p in PAGES]


def _chart_specs(at: AppTest) -> list[str]:
    return [el.proto.spec for el in at.get("plotly_chart")]


def _all_text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "success", "warning")
                     for e in getattr(at, kind))


def test_every_page_runs_on_a_tiny_dataset(tiny: Dataset) -> None:
    at = _app("tiny")
    assert not at.exception
    for path, title in _page_specs():
        at.switch_page(path).run()
        assert not at.exception, f"page {title} raised: {[e.message for e in at.exception]}"
    assert at.selectbox(key="crystalrep.dataset").value == "tiny"


def test_data_page_shows_size_source_and_fingerprint(tiny: Dataset) -> None:
    at = _app("tiny")
    assert "tiny" in at.title[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Structures"] == "5"
    assert metrics["Sites"] == str(len(tiny.numbers))
    assert f"`{tiny.fingerprint[:12]}`" in _all_text(at)
    text = _all_text(at)
    assert "CC0" in text and "Five tiny crystals." in text
    assert len(at.dataframe[0].value) == 5
    assert len(_chart_specs(at)) == 2  # periodic table + histogram


def test_changing_the_property_changes_the_histogram(tiny: Dataset) -> None:
    at = _app("tiny")
    picker = at.selectbox(key="crystalrep.property")
    assert set(picker.options) == {"volume (Å^3)", "nsites_x2"}
    picker.select("nsites_x2").run()
    before = _chart_specs(at)
    assert "**nsites_x2**" in _all_text(at)
    at.selectbox(key="crystalrep.property").select("volume").run()
    assert not at.exception
    after = _chart_specs(at)
    assert after[0] == before[0]  # the periodic table does not depend on the property
    assert after[1] != before[1]
    assert "volume (Å^3)" in after[1] and "cell volume" in _all_text(at)


def test_search_filters_the_table(tiny: Dataset) -> None:
    at = _app("tiny")
    at.text_input(key="data.search").input("SrTiO3").run()
    table = at.dataframe[0].value
    assert table["formula"].tolist() == ["SrTiO3"]


def test_no_dataset_says_how_to_build_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("crystalrep.datasets.registry.default_dataset_dir", lambda: tmp_path / "no-default")
    at = _app()
    assert not at.exception
    assert any("crystalrep data build-default" in e.value for e in at.info)
    assert at.file_uploader(key="crystalrep.import.file") is not None


def _upload(at: AppTest, filename: str, data: bytes, name: str) -> AppTest:
    at.file_uploader(key="crystalrep.import.file").upload(filename, data, "chemical/x-cif").run()
    at.text_input(key="crystalrep.import.name").input(name).run()
    return at.button(key="crystalrep.import.go").click().run()


def test_broken_cif_upload_shows_one_error_not_an_exception(tiny: Dataset) -> None:
    at = _upload(_app("tiny"), "broken.cif", BROKEN_CIF, "broken")
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.endswith(".") and "Traceback" not in message and "\n" not in message.strip()
    assert at.selectbox(key="crystalrep.dataset").value == "tiny"


def test_valid_cif_upload_imports_and_selects_the_new_dataset(tiny: Dataset, tiny_structures: list[Structure]) -> None:
    pytest.importorskip("crystalrep.importers.api", reason="crystalrep.importers.api has not landed yet")
    from pymatgen.io.cif import CifWriter

    cif = str(CifWriter(tiny_structures[3])).encode()
    at = _upload(_app("tiny"), "SrTiO3.cif", cif, "uploaded")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "uploaded" in at.success[0].value
    assert at.selectbox(key="crystalrep.dataset").value == "uploaded"
    assert "uploaded" in at.title[0].value
    assert {m.label: m.value for m in at.metric}["Structures"] == "1"


def test_zip_upload_lists_rejected_files_with_reasons(tiny: Dataset, tiny_structures: list[Structure]) -> None:
    pytest.importorskip("crystalrep.importers.api", reason="crystalrep.importers.api has not landed yet")
    from pymatgen.io.cif import CifWriter

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.cif", str(CifWriter(tiny_structures[2])))
        zf.writestr("bad.cif", BROKEN_CIF)
    at = _upload(_app("tiny"), "mixed.zip", buf.getvalue(), "mixed")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "1 structure " in at.success[0].value
    assert "1 row rejected" in at.warning[0].value
    rejected = next(df.value for df in at.dataframe if "reason" in df.value.columns)
    assert len(rejected) == 1 and "bad.cif" in rejected["row"].iloc[0]
    assert rejected["reason"].iloc[0].strip()


def test_import_of_an_existing_name_is_refused(tiny: Dataset, tiny_structures: list[Structure]) -> None:
    pytest.importorskip("crystalrep.importers.api", reason="crystalrep.importers.api has not landed yet")
    from pymatgen.io.cif import CifWriter

    buf = io.StringIO(str(CifWriter(tiny_structures[0])))
    at = _upload(_app("tiny"), "NaCl.cif", buf.getvalue().encode(), "tiny")
    assert not at.exception
    assert "already exists" in at.error[0].value


@pytest.mark.parametrize(("filename", "data"), [
    ("x.zip", b"not a zip"), ("x.cif", b"\x00\xff\xfe garbage"), ("empty.cif", b""), ("t.csv", b"a,b\n1,2\n"),
    ("POSCAR", b"hello\n1.0\n"), ("x.xyz", b"3\n\nFe 0 0 0\n"), ("x.json", b"{not json"), ("x.tar.gz", b"\x1f\x8b\x08"),
])
def test_bad_uploads_become_one_sentence(filename: str, data: bytes) -> None:
    pytest.importorskip("crystalrep.importers.api", reason="crystalrep.importers.api has not landed yet")
    from ui.state import run_import

    outcome = run_import(filename, data, name="bad")
    assert outcome.error.endswith(".") and "\n" not in outcome.error and "Traceback" not in outcome.error
    assert outcome.n_structures == 0


def test_default_import_name_is_a_valid_dataset_name() -> None:
    from ui.state import default_import_name

    assert default_import_name("my file (1).cif") == "my_file_1"
    assert default_import_name("POSCAR") == "POSCAR"
    assert default_import_name("...") == "upload"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_DEFAULT, reason="data/default is not built (run `crystalrep data build-default`)")
def test_every_page_runs_on_the_default_dataset() -> None:
    # 1,885 crystals: the Probes page alone embeds four encoders and fits their learning curves (~80 s
    # on a busy 2-core machine), so this test gets more than the tiny-dataset timeout.
    at = AppTest.from_file(APP, default_timeout=10 * TIMEOUT).run()
    assert at.selectbox(key="crystalrep.dataset").value == "default"
    for path, title in _page_specs():
        at.switch_page(path).run()
        assert not at.exception, f"page {title} raised on the default dataset: {[e.message for e in at.exception]}"
        assert not at.error, f"page {title} shows an error on the default dataset: {[e.value for e in at.error]}"
    at.switch_page("views/data.py").run()
    assert len(at.dataframe[0].value) > 100


def test_data_page_computes_missing_embeddings_on_request(tiny: Dataset) -> None:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[state.DATASET] = "tiny"
    at.session_state[state.ENCODERS] = ["magpie"]
    at.run()
    table = next(df.value for df in at.dataframe if "stored" in df.value.columns)
    assert table["stored"].tolist() == ["not yet"]
    assert table.iloc[0].drop(["encoder", "stored"]).tolist() == ["–"] * 5  # a dash, never a literal "None"
    at.button(key="data.embed").click().run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "stored" in df.value.columns)
    assert table["stored"].tolist() == ["yes"] and table["dim"].tolist() == ["132"]
    assert not table.isin(["None", None]).any().any() and table["device"].tolist() == ["cpu"]
    from crystalrep.datasets import load_dataset
    from crystalrep.embed import load_embedding

    assert load_embedding(load_dataset("tiny"), "magpie") is not None


def test_periodic_table_numbers_are_12_px_across_the_page(tiny: Dataset) -> None:
    import json

    from ui import state

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[state.DATASET] = "tiny"
    at.run()
    table = json.loads(at.get("plotly_chart")[0].proto.spec)
    sizes = [trace["textfont"]["size"] for trace in table["data"] if trace.get("type") == "heatmap"]
    assert sizes and min(sizes) >= 12  # ~9 px before; tiles now span the page, so 12 px fits
