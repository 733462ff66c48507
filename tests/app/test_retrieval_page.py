"""The Retrieval page under AppTest: pick a crystal, upload a file, bad uploads fail with one sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from streamlit.testing.v1 import AppTest

from crystalrep.analysis.retrieval import retrieval_report
from crystalrep.datasets import Dataset, default_dataset_dir, load_dataset, save_dataset
from crystalrep.embed import load_embedding
from tests.conftest import with_californium

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGE = "views/retrieval.py"
ENCODERS = ["cgcnn-random", "magpie"]

pytestmark = pytest.mark.skipif(not (default_dataset_dir() / "meta.json").is_file(),
                                reason="data/default is not built (run `crystalrep data build-default`)")


@pytest.fixture
def small() -> Dataset:
    """48 crystals of the default dataset, saved as 'small' in the temporary CRYSTALREP_HOME."""
    ds = load_dataset("default").subset(range(0, 1886, 40), name="small")
    save_dataset(ds)
    return ds


def _page() -> AppTest:
    from ui import state

    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "small"
    at.session_state[state.ENCODERS] = ENCODERS
    at.run()
    return at.switch_page(PAGE).run()


def _neighbours(at: AppTest):
    return next(df.value for df in at.dataframe if "distance" in df.value.columns)


def _upload(at: AppTest, filename: str, data: bytes) -> AppTest:
    from ui import retrieval as rv

    at.radio(key=rv.SOURCE).set_value(rv.FROM_UPLOAD).run()
    return at.file_uploader(key=rv.UPLOAD).upload(filename, data, "application/octet-stream").run()


def test_picking_a_crystal_lists_k_neighbours_without_itself(small: Dataset) -> None:
    from ui import retrieval as rv

    at = _page()
    assert not at.exception, [e.message for e in at.exception]
    picker = at.selectbox(key=rv.ROW)
    assert picker.options[0].startswith(f"{small.ids[0]} — {small.table['formula'][0]} — ")
    picker.set_value(5).run()
    table = _neighbours(at)
    assert len(table) == 10 and small.ids[5] not in set(table["id"])
    assert table["distance"].is_monotonic_increasing and list(table["rank"]) == list(range(1, 11))
    assert {"space group", "density"} <= set(table.columns)
    at.slider(key=rv.K).set_value(4).run()
    assert len(_neighbours(at)) == 4
    at.radio(key=rv.METRIC).set_value("euclidean").run()
    assert not at.exception and len(_neighbours(at)) == 4

    spread = next(df.value for df in at.dataframe if "std_ratio" in df.value.columns)
    assert set(spread["property"]) == set(small.property_names("numeric"))
    comparison = next(df.value for df in at.dataframe if "chemical system" in df.value.columns)
    assert list(comparison.index) == [*ENCODERS, "random neighbours (chance)"]
    X, _ = load_embedding(small, "magpie")
    report = retrieval_report(X, small.table, k=4, metric="euclidean", standardise=True).set_index("label")
    assert comparison.loc["magpie", "space group"] == round(report.loc["spacegroup", "precision"], 3)
    assert comparison.loc["random neighbours (chance)", "prototype"] == round(report.loc["prototype", "chance"], 3)
    ratio = next(df.value for df in at.dataframe if "spread ratio" in df.value.columns)
    assert list(ratio.index) == ENCODERS and ratio["spread ratio"].notna().all()  # none invented for chance
    assert "search recall@10" not in ratio.columns
    assert f"Exact search over all {len(small)} crystals." in "\n".join(c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 6  # the map, the query and its first four neighbours in 3-D


def _rotated_supercell(structure: Structure) -> Structure:
    from scipy.spatial.transform import Rotation

    big = structure.copy()
    big.make_supercell([2, 1, 2])
    rot = Rotation.from_euler("zyx", [31, 47, 12], degrees=True).as_matrix()
    return Structure(Lattice(big.lattice.matrix @ rot.T), big.species, big.frac_coords)


def test_uploaded_rotated_supercell_finds_its_source_first(small: Dataset) -> None:
    target = next(i for i in range(len(small)) if 3 <= small.table["nsites"][i] <= 12)
    query = _rotated_supercell(small.structure(target))
    at = _upload(_page(), "query.cif", query.to(fmt="cif").encode())
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = _neighbours(at)
    assert table["id"][0] == small.ids[target]
    assert table["distance"][0] < 1e-4 < table["distance"][1]
    assert len(at.get("plotly_chart")) == 6  # the map, the upload and four neighbours


def _partial() -> bytes:
    s = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    return s.to(fmt="cif").encode()


def _nan_lattice() -> bytes:
    d = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    d["lattice"]["matrix"][0][0] = float("nan")
    return json.dumps(d).encode()


def _huge() -> bytes:
    s = Structure(Lattice.cubic(3.0), ["Fe"], [[0, 0, 0]])
    s.make_supercell([22, 22, 21])  # 10,164 atoms
    return s.to(fmt="cif").encode()


def test_bad_uploads_show_one_sentence_and_keep_the_dataset(small: Dataset) -> None:
    at = _page()
    bad = [("broken.cif", b"data_broken\n_cell_length_a 4.0\n_cell_length_b abc\nloop_\n_atom_site_label\nNa1\n"),
           ("big.cif", _huge()), ("nan.json", _nan_lattice()), ("alloy.cif", _partial()), ("POSCAR", b"hello\n1.0\n")]
    for filename, data in bad:
        at = _upload(at, filename, data)
        assert not at.exception, f"{filename}: {[e.message for e in at.exception]}"
        assert len(at.error) == 1, filename
        message = at.error[0].value
        assert message.endswith(".") and "\n" not in message and "Traceback" not in message, message
        assert not any("distance" in df.value.columns for df in at.dataframe)
    assert "500" in _upload(at, "big.cif", _huge()).error[0].value
    assert load_dataset("small").fingerprint == small.fingerprint
    assert at.selectbox(key="crystalrep.dataset").value == "small"


def test_an_encoder_that_cannot_embed_the_dataset_is_one_sentence() -> None:
    from ui import retrieval as rv
    from ui import state

    with_californium([0, 40, 80, 120, 160], "small")  # Cf: Z = 98, beyond SOAP's species
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "small"
    at.session_state[state.ENCODERS] = ["magpie", "soap"]
    at.run()
    at = at.switch_page(PAGE).run()
    at.selectbox(key=rv.ENCODER).set_value("soap").run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.error) == 1 and "soap cannot embed this dataset" in at.error[0].value
    comparison = next(df.value for df in at.dataframe if "chemical system" in df.value.columns)
    assert list(comparison.index) == ["magpie", "random neighbours (chance)"]
    at.selectbox(key=rv.ENCODER).set_value("magpie").run()
    assert not at.error and len(_neighbours(at)) == 5


def test_a_link_restores_the_query_and_the_map_rings_it_and_its_neighbours(small: Dataset) -> None:
    from ui import retrieval as rv
    from ui import state

    target = small.ids[9]
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "small"
    at.session_state[state.ENCODERS] = ENCODERS
    at.query_params.update({"enc": "magpie", "k": "3", "metric": "euclidean", "crystal": target,
                            "sel": [small.ids[1], small.ids[2]], "q": "O"})
    at.run()
    at = at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key=rv.ENCODER).value == "magpie" and at.slider(key=rv.K).value == 3
    assert at.radio(key=rv.METRIC).value == "euclidean" and at.selectbox(key=rv.ROW).value == 9
    table = _neighbours(at)
    assert len(table) == 3 and target not in set(table["id"])
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    layers = {t["name"]: {row[0] for row in t["customdata"]} for t in fig["data"]
              if t["name"] in ("clicked crystal", "nearest neighbours", "selected", "search match")}
    assert layers["clicked crystal"] == {target} and layers["nearest neighbours"] == set(table["id"])
    assert layers["selected"] == {small.ids[1], small.ids[2]} and layers["search match"]
    selection = next(df.value for df in at.dataframe if "row" in df.value.columns)
    assert sorted(selection["row"]) == [1, 2]
    at.selectbox(key=rv.ROW).set_value(4).run()
    assert at.query_params["crystal"] == small.ids[4]


def test_descriptors_are_standardised_and_an_approximate_search_shows_its_recall(monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis.retrieval import APPROX_ENV, STANDARDISED_NOTE
    from ui import state

    save_dataset(load_dataset("default").subset(range(0, 1886, 12), name="mid"))  # 158 crystals
    monkeypatch.setenv(APPROX_ENV, "100")  # the page runs in this process: approximate above 100 rows
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "mid"
    at.session_state[state.ENCODERS] = ["magpie"]
    at.run()
    at = at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    captions = "\n".join(c.value for c in at.caption)
    assert STANDARDISED_NOTE in captions and "above 100 crystals a faiss approximate index" in captions
    found = re.search(r"measured recall@10 against exact search = ([0-9.]+) on ([0-9,]+) held-out", captions)
    assert found and float(found[1]) >= 0.99, captions
    assert len(_neighbours(at)) == 10
    side = next(df.value for df in at.dataframe if "search recall@10" in df.value.columns)
    assert side.loc["magpie", "search recall@10"] == pytest.approx(float(found[1]), abs=1e-3)


def test_big_dataset_picker_is_a_search_not_a_full_list(small: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import retrieval as rv

    monkeypatch.setattr(rv, "PICKER_ROWS", 10)  # 'small' has 48 rows: the page must switch to a search
    at = _page()
    assert not at.exception, [e.message for e in at.exception]
    picker = at.selectbox(key=rv.ROW)
    assert list(picker.options) == [picker.options[0]]  # before any search: only the current query
    formula = small.table["formula"].iloc[7]
    at.text_input(key=rv.ROW_SEARCH).input(formula).run()
    picker = at.selectbox(key=rv.ROW)
    expected = [i for i, label in enumerate(rv.labels(rv.state.current_dataset_ref()) if hasattr(rv, "state") else [])
                if formula.lower() in label.lower()]
    assert 2 <= len(picker.options) <= rv.PICKER_MATCHES
    assert all(formula.lower() in option.lower() for option in picker.options[1:])
    assert expected == [] or len(picker.options) - 1 <= len(expected)


def test_crystals_sharing_the_query_vector_are_said_to_tie() -> None:
    from ui import retrieval as rv
    from ui import state

    full = load_dataset("default")
    carbon = [int(i) for i in np.flatnonzero(full.table["formula"].astype(str).to_numpy() == "C")]
    assert len(carbon) > 10  # polymorphs: one magpie vector (magpie describes composition only)
    poly = full.subset(sorted(set(range(0, 1886, 60)) | set(carbon)), name="poly")
    save_dataset(poly)
    query = int(np.flatnonzero(poly.table["formula"].astype(str).to_numpy() == "C")[0])
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[state.DATASET] = "poly"
    at.session_state[state.ENCODERS] = ["magpie"]
    at.run()
    at = at.switch_page(PAGE).run()
    at.selectbox(key=rv.ROW).set_value(query).run()
    assert not at.exception, [e.message for e in at.exception]
    table = _neighbours(at)
    copies = len(carbon) - 1
    assert (table["distance"] == 0).all() and set(table["formula"]) == {"C"}
    captions = " ".join(c.value for c in at.caption)
    assert f"{copies} other crystals have exactly this magpie vector" in captions
    assert "all 10 neighbours listed are among them, in dataset order" in captions
    distinct = len(np.unique(load_embedding(poly, "magpie")[0], axis=0))
    assert distinct < len(poly) - 9
    assert f"Exact search over all {len(poly):,} crystals. They hold {distinct:,} distinct vectors" in captions
    at.slider(key=rv.K).set_value(copies + 2).run()
    assert "they come first, at distance 0, in dataset order" in " ".join(c.value for c in at.caption)
