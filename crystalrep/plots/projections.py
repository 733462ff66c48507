"""Figures of 2-D maps: WebGL scatter panels with highlighted crystals, at any size.

No Streamlit and no analysis imports here (pages pass results in). Point colours come from one
:class:`~crystalrep.plots.style.Colouring`. Several maps are one figure with subplots: plotly
draws every ``scattergl`` subplot of a figure into one WebGL context, and browsers cap live
contexts (Chromium at 16), so four encoders side by side cost one. A figure ships at most
``max_points`` points (:mod:`crystalrep.plots.sampling`): below that every crystal is a point;
above it each panel draws the same seeded, stratified sample over a density image of all rows
(:mod:`crystalrep.plots.density`) and says on the map how many points it draws of how many.
Every point carries its dataset row in ``customdata`` (:data:`ROW`, :data:`PANEL`), so a click
or a lasso on any panel or highlight layer names the crystals it hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.datasets import Dataset
from crystalrep.plots import sampling
from crystalrep.plots.map_captions import METHOD_NAMES
from crystalrep.plots.map_layout import axis_titles, finish_layout, grid, panel_note
from crystalrep.plots.style import HIGHLIGHT, MISSING, Colouring, encoder_colour

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["METHOD_NAMES", "Highlight", "MapPanel", "axis_titles", "map_figure", "maps_figure", "selected_rows"]

ROW, PANEL = 4, 5  # customdata columns holding the dataset row and the panel index
HIGHLIGHT_NAMES = {"selection": "selected", "search": "search match", "neighbours": "nearest neighbours",
                   "focus": "clicked crystal"}
ROW_HEIGHT = 420  # px per row of map panels
RING_SCALE = {"selection": 1.6, "search": 2.2, "neighbours": 2.4, "focus": 3.6}


@dataclass(frozen=True)
class Highlight:
    """Crystals drawn over every map, as dataset rows: a clicked one, its neighbours, a selection, search hits."""

    focus: int | None = None
    neighbours: tuple[int, ...] = ()
    selection: tuple[int, ...] = ()
    search: tuple[int, ...] = ()

    def layers(self, limit: int | None = None) -> dict[str, tuple[int, ...]]:
        """Non-empty layers in drawing order (the focus on top), each cut to its first ``limit`` rows."""
        rows = {"selection": self.selection, "search": self.search, "neighbours": self.neighbours,
                "focus": () if self.focus is None else (self.focus,)}
        return {k: tuple(v)[:limit] for k, v in rows.items() if len(v)}


@dataclass(frozen=True, eq=False)
class MapPanel:
    """One map of a figure: coordinates (one row per crystal), title, method and, if any, its encoder."""

    coords: np.ndarray
    title: str
    method: str
    encoder: str | None = None


def _hover(dataset: Dataset, text: np.ndarray, rows: np.ndarray, panel: int) -> np.ndarray:
    table = dataset.table
    custom = np.empty((len(rows), 6), dtype=object)
    custom[:, 0] = table["id"].to_numpy()[rows].astype(str)
    custom[:, 1] = table["formula"].to_numpy()[rows].astype(str)
    custom[:, 2] = table["spacegroup"].to_numpy()[rows].astype(str)
    custom[:, 3] = text[rows]
    custom[:, ROW] = rows
    custom[:, PANEL] = panel
    return custom


def _template(colour: Colouring) -> str:
    return ("<b>%{customdata[1]}</b> · %{customdata[0]}<br>space group %{customdata[2]}<br>"
            f"{colour.label}: %{{customdata[3]}}<extra></extra>")


def _panel_traces(panel: MapPanel, index: int, dataset: Dataset, colour: Colouring, size: float,
                  layers: Mapping[str, tuple[int, ...]], rows: np.ndarray, text: np.ndarray) -> list[go.Scattergl]:
    import plotly.graph_objects as go

    xy = np.asarray(panel.coords)
    if xy.shape != (len(dataset), 2):
        raise ValueError(f"{len(xy)} map points for {len(dataset)} crystals.")
    template = _template(colour)
    opacity = 0.6 if layers else 0.9  # fade the map so the rings read
    first = index == 0
    traces = []

    def points(sub: np.ndarray, **kwargs: Any) -> go.Scattergl:
        return go.Scattergl(x=xy[sub, 0], y=xy[sub, 1], mode="markers", customdata=_hover(dataset, text, sub, index),
                            hovertemplate=template, **kwargs)

    values = colour.values[rows]
    if colour.kind == "numeric":
        ok = np.isfinite(values)
        if (~ok).any():
            traces.append(points(rows[~ok], name="no colour", showlegend=False,
                                 marker={"size": size, "color": MISSING, "opacity": opacity}))
        traces.append(points(rows[ok], name=colour.label, showlegend=False,
                             marker={"size": size, "color": values[ok], "coloraxis": "coloraxis", "opacity": opacity}))
    else:
        for cat in colour.categories:
            traces.append(points(rows[values == cat], name=cat, legendgroup=cat, showlegend=first,
                                 marker={"size": size, "color": colour.colour_of(cat), "opacity": opacity}))
    for layer, ringed in layers.items():
        traces.append(points(np.asarray(ringed, dtype=np.int64), name=HIGHLIGHT_NAMES[layer], legendgroup=layer,
                             showlegend=first,
                             marker={**HIGHLIGHT[layer], "size": max(size * RING_SCALE[layer], 9.0)}))
    return traces


def drawn_rows(n: int, colour: Colouring, layers: Mapping[str, tuple[int, ...]], *, panels: int, max_points: int,
               seed: int | None) -> sampling.Drawn:
    """The rows every panel draws as points: all, or a sample stratified by colour that keeps the highlighted rows."""
    rings = sum(len(v) for v in layers.values())
    strata = colour.values if colour.kind == "categorical" else np.isfinite(colour.values)
    keep = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in layers.values()])) if layers else ()
    size = sampling.per_panel(max_points, panels, rings)
    return sampling.Drawn(sampling.sample_rows(n, size, strata=strata, keep=keep, seed=seed), n)


def maps_figure(panels: Sequence[MapPanel], dataset: Dataset, colour: Colouring, *, point_size: float = 5.0,
                highlight: Highlight | None = None, title: str = "", row_height: int = ROW_HEIGHT,
                max_points: int = sampling.POINT_BUDGET, seed: int | None = 0) -> go.Figure:
    """Several maps of the same crystals as one figure (subplots; one WebGL context).

    Numeric colours share one colour axis (``cmin``/``cmax`` = the colouring's range) and one
    colour bar; categorical colours are one trace per legend entry and panel, toggled together
    from one legend. Highlight layers (:class:`Highlight`, at most :data:`~crystalrep.plots.sampling.MAX_RINGS`
    rows each) follow as ring traces in every panel. Hover shows id, formula, space group and the
    colour's value. ``layout.meta`` holds ``points_drawn`` (per panel), ``points_total`` and ``sampled``.

    Args:
        panels: The maps, drawn left to right, top to bottom.
        dataset: The crystals; row ``i`` of every panel's coordinates is row ``i`` here.
        colour: What the point colours mean.
        point_size: Marker size in px.
        highlight: Crystals drawn over every map.
        title: Figure title (a single panel uses its own title when empty).
        row_height: Height of one row of panels in px.
        max_points: Points the whole figure may ship (rings included); above it, a sample over a density image.
        seed: Seed of that sample.
    """
    from plotly.subplots import make_subplots

    from crystalrep.plots.density import add_density, density_image

    if not panels:
        raise ValueError("a map figure needs at least one panel.")
    layers = (highlight or Highlight()).layers(sampling.MAX_RINGS)
    n_rows, n_cols = grid(len(panels))
    single = len(panels) == 1
    titles = [] if single else [f"<span style='color:{encoder_colour(p.encoder)}'>■</span> {p.title}"
                                if p.encoder else p.title for p in panels]
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles or None, horizontal_spacing=0.05,
                        vertical_spacing=min(0.3, 70 / (n_rows * row_height)))
    drawn = drawn_rows(len(dataset), colour, layers, panels=len(panels), max_points=max_points, seed=seed)
    text = np.asarray(colour.text, dtype=object)
    for i, panel in enumerate(panels):
        r, c = divmod(i, n_cols)
        for trace in _panel_traces(panel, i, dataset, colour, point_size, layers, drawn.rows, text):
            fig.add_trace(trace, row=r + 1, col=c + 1)
        x_title, y_title = axis_titles(panel.method)
        pca = panel.method == "pca"
        fig.update_xaxes(title_text=x_title, showticklabels=pca, zeroline=False, row=r + 1, col=c + 1,
                         title_standoff=4)
        axis = fig.get_subplot(r + 1, c + 1).xaxis.plotly_name.replace("axis", "")
        # equal axes for PCA, whose axes are embedding units; UMAP/t-SNE axes have no units to keep
        fig.update_yaxes(title_text=y_title, showticklabels=pca, zeroline=False, row=r + 1, col=c + 1,
                         scaleanchor=axis if pca else None, title_standoff=4)
        if drawn.sampled:
            add_density(fig, density_image(np.asarray(panel.coords), colour), row=r + 1, col=c + 1)
            panel_note(fig, f"{drawn.label()} · shading: all {drawn.total:,}", row=r + 1, col=c + 1)
    finish_layout(fig, colour, n_rows=n_rows, n_cols=n_cols, row_height=row_height,
                  title=title or (panels[0].title if single else ""), titled=bool(title or single))
    fig.update_layout(meta={"points_drawn": int(drawn.rows.size), "points_total": drawn.total,
                            "sampled": drawn.sampled})
    return fig


def map_figure(coords: np.ndarray, dataset: Dataset, colour: Colouring, *, title: str, method: str,
               point_size: float = 5.0, highlight: Highlight | None = None, encoder: str | None = None,
               max_points: int = sampling.POINT_BUDGET, seed: int | None = 0) -> go.Figure:
    """One map as a figure (:func:`maps_figure` with a single panel)."""
    return maps_figure([MapPanel(np.asarray(coords), title, method, encoder)], dataset, colour,
                       point_size=point_size, highlight=highlight, max_points=max_points, seed=seed)


def selected_rows(points: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[int]]:
    """Dataset rows and panel indices of the points in a plotly selection event (in event order)."""
    rows, panels = [], []
    for point in points:
        data = point.get("customdata")
        if data is not None and len(data) > PANEL:
            rows.append(int(data[ROW]))
            panels.append(int(data[PANEL]))
    return rows, panels


def _length(values: Any) -> int:
    if values is None:
        return 0
    if isinstance(values, Mapping) and "bdata" in values:  # plotly's typed array: base64 of the raw buffer
        import base64

        if "shape" in values:
            return int(str(values["shape"]).split(",")[0])
        return len(base64.b64decode(values["bdata"])) // np.dtype(values["dtype"]).itemsize
    return len(values)


def figure_points(fig: Mapping[str, Any]) -> int:
    """Points a figure ships to the browser, from its plotly JSON (``fig.to_plotly_json()`` or parsed ``to_json``)."""
    return sum(_length(t.get("x")) for t in fig.get("data", ()))
