"""Map figures: the colour of every point follows the chosen column, scale and clip; hover names the crystal;
several maps are one figure; highlights ring the same crystals in every panel; a selection event names rows."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.datasets import Dataset
from crystalrep.plots import projections as pp
from crystalrep.plots import style


def _numeric_trace(fig):  # the coloured trace is the one with a colour array
    return next(t for t in fig.data if not isinstance(t.marker.color, str))


def test_colour_options_list_properties_then_structure_columns(ds: Dataset) -> None:
    options = style.colour_options(ds)
    assert list(options)[:4] == ["volume", "energy", "wide", "kind"]
    assert options["kind"] == options["crystal_system"] == options["spacegroup"] == "categorical"
    assert options["nsites"] == "numeric"
    with pytest.raises(ValueError, match="cannot colour by"):
        style.colouring(ds, "nope")
    with pytest.raises(ValueError, match="clip"):
        style.colouring(ds, "volume", clip=50)


def test_the_colour_property_changes_the_marker_colour_array(ds: Dataset, coords: np.ndarray) -> None:
    by_volume = pp.map_figure(coords, ds, style.colouring(ds, "volume"), title="t", method="pca")
    by_wide = pp.map_figure(coords, ds, style.colouring(ds, "wide"), title="t", method="pca")
    a, b = _numeric_trace(by_volume), _numeric_trace(by_wide)
    assert np.allclose(a.marker.color, ds.table["volume"])
    assert not np.allclose(a.marker.color, b.marker.color)
    assert by_volume.layout.coloraxis.colorbar.title.text == "volume (Å^3)"


def test_log_scale_and_clip_change_the_colours_and_the_caption(ds: Dataset, coords: np.ndarray) -> None:
    linear = style.colouring(ds, "wide")
    log = style.colouring(ds, "wide", log=True)
    clipped = style.colouring(ds, "wide", log=True, clip=25)
    assert np.allclose(log.values, np.log10(ds.table["wide"]))
    assert (log.lo, log.hi) == (0.0, 4.0)
    assert clipped.lo == pytest.approx(np.percentile(np.log10(ds.table["wide"]), 25))
    assert clipped.values.max() == pytest.approx(clipped.hi) and clipped.hi < 4.0
    assert "linear scale, full range" in linear.caption
    assert "log10 scale" in log.caption and "25th–75th percentile" in clipped.caption
    fig = pp.map_figure(coords, ds, clipped, title="t", method="umap")
    trace = _numeric_trace(fig)
    assert fig.layout.coloraxis.cmax == pytest.approx(clipped.hi)
    assert not np.allclose(trace.marker.color, _numeric_trace(pp.map_figure(coords, ds, log, title="t",
                                                                            method="umap")).marker.color)


def test_missing_and_non_positive_values_are_grey_and_counted(ds: Dataset, coords: np.ndarray) -> None:
    energy = style.colouring(ds, "energy")
    assert energy.uncoloured == 1 and "1 crystal drawn grey" in energy.caption
    log = style.colouring(ds, "energy", log=True)  # negative energies have no log
    assert log.uncoloured == int((~(ds.table["energy"] > 0)).sum())
    fig = pp.map_figure(coords, ds, log, title="t", method="tsne")
    assert sum(len(t.x) for t in fig.data) == len(ds)  # every point is drawn
    assert fig.data[0].marker.color == style.MISSING


def test_categorical_colour_gives_one_trace_per_category(ds: Dataset, coords: np.ndarray) -> None:
    kind = style.colouring(ds, "kind")
    fig = pp.map_figure(coords, ds, kind, title="t", method="umap")
    names = [t.name for t in fig.data]
    assert names == kind.categories and len(names) == style.TOP + 2  # 10 named, "other", "no value"
    assert names[-2:] == ["other", "no value"]
    assert sum(len(t.x) for t in fig.data) == len(ds)
    assert len({t.marker.color for t in fig.data}) == len(fig.data)
    assert "top 10 of 14" in kind.caption and "1 crystal without a value" in kind.caption


def test_hover_names_id_formula_spacegroup_and_value(ds: Dataset, coords: np.ndarray) -> None:
    fig = pp.map_figure(coords, ds, style.colouring(ds, "volume"), title="t", method="pca")
    trace = _numeric_trace(fig)
    first = list(trace.customdata[0])
    row = ds.table.iloc[0]
    assert first[:3] == [row["id"], row["formula"], str(row["spacegroup"])]
    assert first[3] == f"{row['volume']:.4g}" and first[pp.ROW] == 0 and first[pp.PANEL] == 0
    for i in range(4):
        assert f"customdata[{i}]" in trace.hovertemplate
    assert "space group" in trace.hovertemplate and "volume (Å^3)" in trace.hovertemplate


def test_several_maps_are_one_figure_with_one_shared_colour_axis(ds: Dataset, coords: np.ndarray) -> None:
    panels = [pp.MapPanel(coords * (i + 1), f"{e} · PCA", "pca", e)
              for i, e in enumerate(["magpie", "soap", "chgnet", "cgcnn-random"])]
    fig = pp.maps_figure(panels, ds, style.colouring(ds, "volume"))
    axes = sorted(k for k in fig.layout.to_plotly_json() if k.startswith("xaxis"))
    assert axes == ["xaxis", "xaxis2", "xaxis3", "xaxis4"]  # four subplots, 2 × 2
    assert fig.layout.xaxis2.domain[0] > fig.layout.xaxis.domain[1] and fig.layout.yaxis3.domain[1] < fig.layout.yaxis.domain[0]
    assert {t.marker.coloraxis for t in fig.data if not isinstance(t.marker.color, str)} == {"coloraxis"}
    assert sum(len(t.x) for t in fig.data) == 4 * len(ds)  # every crystal in every panel
    titles = [a.text for a in fig.layout.annotations]
    for e in ("magpie", "soap", "chgnet", "cgcnn-random"):
        title = next(t for t in titles if e in t)
        assert style.encoder_colour(e) in title  # one encoder -> colour table for every chart
    panels_seen = {int(t.customdata[0][pp.PANEL]) for t in fig.data}
    assert panels_seen == {0, 1, 2, 3}


def test_categorical_legend_entries_are_shared_by_every_panel(ds: Dataset, coords: np.ndarray) -> None:
    kind = style.colouring(ds, "kind")
    fig = pp.maps_figure([pp.MapPanel(coords, "a", "umap"), pp.MapPanel(coords, "b", "tsne")], ds, kind)
    shown = [t.name for t in fig.data if t.showlegend]
    assert shown == kind.categories  # one legend, toggling the class in both panels
    assert all(t.legendgroup == t.name for t in fig.data)


def test_highlights_ring_the_same_rows_in_every_panel(ds: Dataset, coords: np.ndarray) -> None:
    hl = pp.Highlight(focus=3, neighbours=(4, 5), selection=(7, 8, 9), search=(1,))
    assert list(hl.layers()) == ["selection", "search", "neighbours", "focus"]
    fig = pp.maps_figure([pp.MapPanel(coords, "a", "pca"), pp.MapPanel(coords[::-1].copy(), "b", "pca")], ds,
                         style.colouring(ds, "volume"), highlight=hl)
    for name, rows in (("clicked crystal", [3]), ("nearest neighbours", [4, 5]), ("selected", [7, 8, 9]),
                       ("search match", [1])):
        layers = [t for t in fig.data if t.name == name]
        assert len(layers) == 2, name
        for layer, xy in zip(layers, (coords, coords[::-1]), strict=True):
            assert [int(r[pp.ROW]) for r in layer.customdata] == rows
            np.testing.assert_allclose(layer.x, xy[rows, 0])
    base = [t for t in fig.data if t.name not in pp.HIGHLIGHT_NAMES.values()]
    assert all(t.marker.opacity < 0.7 for t in base)  # the map fades so the rings read
    assert all(t.marker.opacity > 0.8 for t in pp.map_figure(coords, ds, style.colouring(ds, "volume"),
                                                             title="t", method="pca").data)


def test_selection_events_name_dataset_rows_and_panels(ds: Dataset, coords: np.ndarray) -> None:
    fig = pp.maps_figure([pp.MapPanel(coords, "a", "pca"), pp.MapPanel(coords, "b", "pca")], ds,
                         style.colouring(ds, "kind"))
    trace = fig.data[-1]  # a category of the second panel
    points = [{"curve_number": len(fig.data) - 1, "point_index": i, "customdata": list(trace.customdata[i])}
              for i in range(len(trace.customdata))]
    rows, panels = pp.selected_rows(points + [{"x": 1.0}])  # a point without customdata is skipped
    assert rows == [int(r[pp.ROW]) for r in trace.customdata] and set(panels) == {1}
    assert all(ds.table["id"].iloc[r] == c[0] for r, c in zip(rows, trace.customdata, strict=True))


def test_the_toolbar_never_covers_a_title(ds: Dataset, coords: np.ndarray) -> None:
    fig = pp.map_figure(coords, ds, style.colouring(ds, "volume"), title="a long title " * 8, method="pca")
    top = fig.layout.title.y * fig.layout.height  # px from the bottom to the title's top edge
    assert fig.layout.height - top >= style.MODEBAR_CLEARANCE and fig.layout.title.yanchor == "top"
    assert fig.layout.margin.t > style.MODEBAR_CLEARANCE + 14


