"""Exports: offline HTML, PNG/SVG through the system Chromium, selection tables, a chemiscope dataset."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Structure

from crystalrep import exports
from crystalrep.analysis.projections import project_cached
from crystalrep.datasets import Dataset, PropertyInfo
from crystalrep.embed import embed_dataset
from crystalrep.plots import projections as pp
from crystalrep.plots import style
from crystalrep.store import Store


@pytest.fixture(scope="module")
def ds(tiny_structures: list[Structure]) -> Dataset:
    structures = tiny_structures * 2
    return Dataset.from_structures(
        "exp", [f"e{i}" for i in range(len(structures))], structures,
        properties={"volume": [s.volume for s in structures], "gap": [float("nan"), *range(len(structures) - 1)],
                    "kind": ["a", "b"] * (len(structures) // 2)},
        property_info={"volume": PropertyInfo("volume", unit="Å^3"), "kind": PropertyInfo("kind", kind="categorical")},
        meta={"description": "Ten tiny crystals.", "source": "tests"})


def _figure(ds: Dataset) -> object:
    coords = np.random.default_rng(0).normal(size=(len(ds), 2))
    return pp.map_figure(coords, ds, style.colouring(ds, "volume"), title="map", method="pca")


def test_html_export_inlines_plotly_and_needs_no_network(ds: Dataset) -> None:
    html = exports.figure_html(_figure(ds), title="tiny map").decode()
    assert "<title>tiny map</title>" in html and "Plotly.newPlot" in html
    assert len(html) > 3_000_000  # plotly.js itself is inside
    assert "<script src=" not in html  # nothing to fetch (the browser test opens it offline)


def test_selection_table_and_its_files(ds: Dataset) -> None:
    table = exports.selection_table(ds, [3, 1])
    assert list(table["row"]) == [3, 1] and list(table["id"]) == ["e3", "e1"]
    assert {"space group", "crystal system", "volume (Å^3)", "kind"} <= set(table.columns)
    back = pd.read_parquet(io.BytesIO(exports.table_bytes(table, "parquet")))
    pd.testing.assert_frame_equal(back, table)
    csv = pd.read_csv(io.StringIO(exports.table_bytes(table, "csv").decode()))
    assert list(csv["id"]) == ["e3", "e1"]
    with pytest.raises(ValueError, match="csv, parquet"):
        exports.table_bytes(table, "xlsx")


def test_browser_path_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/opt/my-chrome")
    assert exports.browser_path() == "/opt/my-chrome"
    monkeypatch.delenv("BROWSER_PATH")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(exports, "BROWSERS", ("no-such-browser",))
    assert exports.browser_path() is None
    with pytest.raises(exports.ExportError, match="BROWSER_PATH"):
        exports.figure_image(style_figure(), fmt="png")
    with pytest.raises(ValueError, match="png, svg"):
        exports.figure_image(style_figure(), fmt="gif")


def style_figure() -> object:
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))


@pytest.mark.slow
def test_png_and_svg_come_from_the_system_chromium(ds: Dataset) -> None:
    if exports.browser_path() is None:
        pytest.skip("no Chromium-family browser installed")
    from PIL import Image

    fig = _figure(ds)  # WebGL traces: the browser must draw them
    png = exports.figure_image(fig, fmt="png", width=600, height=400, scale=1)
    image = Image.open(io.BytesIO(png))
    assert image.size == (600, 400)
    colours = np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 20  # points and a colour bar, not a blank page
    svg = exports.figure_image(fig, fmt="svg", width=600, height=400).decode()
    assert svg.startswith("<svg") and "map" in svg


def _stored(ds: Dataset, store: Store) -> None:
    """magpie embedding + two stored projections (PCA seed 0, PCA unscaled) of ``ds``."""
    X, meta = embed_dataset(ds, "magpie", store=store)
    project_cached(X, meta["key"], method="pca", seed=0, store=store)
    project_cached(X, meta["key"], method="pca", params={"standardize": False}, seed=0, store=store)
    other = ds.subset(range(5), name="other")  # another dataset's map must not leak in
    Y, other_meta = embed_dataset(other, "magpie", store=store)
    project_cached(Y, other_meta["key"], method="pca", seed=1, store=store)


def test_stored_projections_are_this_datasets_only(ds: Dataset, tmp_path: Path) -> None:
    store = Store(tmp_path)
    _stored(ds, store)
    found = exports.stored_projections(ds, store=store)
    assert sorted(p.name for p in found) == ["magpie PCA (standardize=False) seed 0", "magpie PCA (standardize=True) seed 0"]
    assert all(p.coords.shape == (len(ds), 2) for p in found)


def test_chemiscope_file_loads_with_chemiscopes_reader(ds: Dataset, tmp_path: Path) -> None:
    chemiscope = pytest.importorskip("chemiscope")
    store = Store(tmp_path / "store")
    _stored(ds, store)
    path = exports.write_chemiscope(ds, tmp_path / "tiny.chemiscope.json.gz", store=store)
    widget = chemiscope.show_input(str(path))  # chemiscope's own reader (validates meta, structures)
    data = json.loads(widget.value)
    assert len(data["structures"]) == len(ds) and data["structures"][0]["size"] == len(ds.structure(0))
    props = data["properties"]
    assert props["id"]["values"] == ds.ids and props["volume"]["units"] == "Å^3"
    assert props["kind"]["values"][:2] == ["a", "b"]
    for axis in (1, 2):
        name = f"magpie PCA (standardize=True) seed 0[{axis}]"
        assert len(props[name]["values"]) == len(ds)
    assert data["settings"]["map"]["x"]["property"] == "magpie PCA (standardize=False) seed 0[1]"
    assert data["meta"]["name"] == "crystalrep: exp" and "2 stored projection(s)" in data["meta"]["description"]
    raw = json.loads(gzip.decompress(path.read_bytes()))
    assert np.isnan(raw["properties"]["gap"]["values"][0])  # a missing value stays missing
    with pytest.raises(ValueError, match=".json.gz"):
        exports.write_chemiscope(ds, tmp_path / "x.json", store=store)
