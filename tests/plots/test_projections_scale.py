"""Maps above the point budget: a seeded sample over a density image of every row, counted on the map,
highlighted rows always drawn, and clicks still naming dataset rows."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.datasets import Dataset
from crystalrep.plots import projections as pp
from crystalrep.plots import style


@pytest.mark.parametrize("column", ["volume", "kind"])
def test_above_the_budget_a_sample_is_drawn_over_a_density_image(ds: Dataset, coords: np.ndarray,
                                                                  column: str) -> None:
    hl = pp.Highlight(focus=3, neighbours=(4,), search=(1, 2))
    panels = [pp.MapPanel(coords, "a", "pca"), pp.MapPanel(coords * 2, "b", "umap")]
    fig = pp.maps_figure(panels, ds, style.colouring(ds, column), highlight=hl, max_points=18, seed=0)
    assert pp.figure_points(fig.to_plotly_json()) <= 18  # the budget holds, rings included
    assert fig.layout.meta["points_drawn"] == 18 // 2 - 4 and fig.layout.meta["sampled"]
    assert len(fig.layout.images) == 2 and {i.layer for i in fig.layout.images} == {"below"}
    assert [i.xref for i in fig.layout.images] == ["x", "x2"]
    notes = [a.text for a in fig.layout.annotations if "points drawn" in a.text]
    assert notes == [f"5 of {len(ds)} points drawn · shading: all {len(ds)}"] * 2
    base = [t for t in fig.data if t.name not in pp.HIGHLIGHT_NAMES.values()]
    rows = {int(r[pp.ROW]) for t in base for r in t.customdata}
    assert {1, 2, 3, 4} <= rows and len(rows) == 5  # the highlighted rows are part of the drawn sample
    for t in base:  # every drawn point still names its dataset row, at that row's coordinates
        for x, data in zip(t.x, t.customdata, strict=True):
            assert ds.table["id"].iloc[int(data[pp.ROW])] == data[0]
            assert x == pytest.approx(panels[int(data[pp.PANEL])].coords[int(data[pp.ROW]), 0])
    again = pp.maps_figure(panels, ds, style.colouring(ds, column), highlight=hl, max_points=18, seed=0)
    assert [list(t.x) for t in again.data] == [list(t.x) for t in fig.data]  # seeded


def test_under_the_budget_every_crystal_is_drawn_and_no_image_added(ds: Dataset, coords: np.ndarray) -> None:
    fig = pp.map_figure(coords, ds, style.colouring(ds, "volume"), title="t", method="pca", max_points=len(ds))
    assert pp.figure_points(fig.to_plotly_json()) == len(ds) and not fig.layout.images
    assert fig.layout.meta == {"points_drawn": len(ds), "points_total": len(ds), "sampled": False}


def test_highlight_layers_are_capped(ds: Dataset) -> None:
    hl = pp.Highlight(selection=tuple(range(10)), search=(1, 2, 3))
    assert hl.layers(limit=4) == {"selection": (0, 1, 2, 3), "search": (1, 2, 3)}
