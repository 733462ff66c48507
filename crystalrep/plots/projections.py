"""Figures of 2-D maps: WebGL scatter panels with highlighted crystals, captions, the static sweep grid.

No Streamlit and no analysis imports here (pages pass results in). Point colours come from one
:class:`~crystalrep.plots.style.Colouring`; all points are always drawn. Several maps are one
figure with subplots: plotly draws every ``scattergl`` subplot of a figure into one WebGL
context, and browsers cap live contexts (Chromium at 16), so four encoders side by side cost one.
Every point carries its dataset row in ``customdata`` (:data:`ROW`, :data:`PANEL`), so a click or
a lasso on any panel or highlight layer names the crystals it hit.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset
from crystalrep.plots.style import (
    COLORSCALE,
    HIGHLIGHT,
    MISSING,
    Colouring,
    encoder_colour,
    place_title,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.analysis.map_quality import MapScores
    from crystalrep.analysis.projections import Projection
    from crystalrep.analysis.sweeps import SweepResult

METHOD_NAMES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
ROW, PANEL = 4, 5  # customdata columns holding the dataset row and the panel index
HIGHLIGHT_NAMES = {"selection": "selected", "search": "search match", "neighbours": "nearest neighbours",
                   "focus": "clicked crystal"}
ROW_HEIGHT = 420  # px per row of map panels


@dataclass(frozen=True)
class Highlight:
    """Crystals drawn over every map, as dataset rows: a clicked one, its neighbours, a selection, search hits."""

    focus: int | None = None
    neighbours: tuple[int, ...] = ()
    selection: tuple[int, ...] = ()
    search: tuple[int, ...] = ()

    def layers(self) -> dict[str, tuple[int, ...]]:
        """Non-empty layers in drawing order (the focus on top)."""
        rows = {"selection": self.selection, "search": self.search, "neighbours": self.neighbours,
                "focus": () if self.focus is None else (self.focus,)}
        return {k: tuple(v) for k, v in rows.items() if len(v)}


@dataclass(frozen=True, eq=False)
class MapPanel:
    """One map of a figure: coordinates (one row per crystal), title, method and, if any, its encoder."""

    coords: np.ndarray
    title: str
    method: str
    encoder: str | None = None


def _hover(dataset: Dataset, colour: Colouring, panel: int) -> tuple[np.ndarray, str]:
    table = dataset.table
    n = len(table)
    custom = np.empty((n, 6), dtype=object)
    custom[:, 0] = table["id"].astype(str).to_numpy()
    custom[:, 1] = table["formula"].astype(str).to_numpy()
    custom[:, 2] = table["spacegroup"].astype(str).to_numpy()
    custom[:, 3] = np.asarray(colour.text, dtype=object)
    custom[:, ROW] = np.arange(n)
    custom[:, PANEL] = panel
    template = ("<b>%{customdata[1]}</b> · %{customdata[0]}<br>space group %{customdata[2]}<br>"
                f"{colour.label}: %{{customdata[3]}}<extra></extra>")
    return custom, template


def axis_titles(method: str) -> tuple[str, str]:
    """``("PC1", "PC2")`` for PCA, ``("UMAP 1", "UMAP 2")`` and so on."""
    if method == "pca":
        return "PC1", "PC2"
    name = METHOD_NAMES.get(method, method)
    return f"{name} 1", f"{name} 2"


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of ``n`` panels: one row up to 3, then 2 × 2, then rows of 3."""
    cols = n if n <= 3 else (2 if n == 4 else 3)
    return math.ceil(n / cols), cols


def _panel_traces(panel: MapPanel, index: int, dataset: Dataset, colour: Colouring, size: float,
                  highlight: Highlight) -> list[go.Scattergl]:
    import plotly.graph_objects as go

    xy = np.asarray(panel.coords)
    if xy.shape != (len(dataset), 2):
        raise ValueError(f"{len(xy)} map points for {len(dataset)} crystals.")
    custom, template = _hover(dataset, colour, index)
    opacity = 0.6 if highlight.layers() else 0.9  # fade the map so the rings read
    first = index == 0
    traces = []
    if colour.kind == "numeric":
        ok = np.isfinite(colour.values)
        if (~ok).any():
            traces.append(go.Scattergl(x=xy[~ok, 0], y=xy[~ok, 1], mode="markers", name="no colour",
                                       marker={"size": size, "color": MISSING, "opacity": opacity},
                                       customdata=custom[~ok], hovertemplate=template, showlegend=False))
        traces.append(go.Scattergl(x=xy[ok, 0], y=xy[ok, 1], mode="markers", name=colour.label,
                                   marker={"size": size, "color": colour.values[ok], "coloraxis": "coloraxis",
                                           "opacity": opacity},
                                   customdata=custom[ok], hovertemplate=template, showlegend=False))
    else:
        for cat in colour.categories:
            rows = colour.values == cat
            traces.append(go.Scattergl(x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=cat, legendgroup=cat,
                                       showlegend=first, customdata=custom[rows], hovertemplate=template,
                                       marker={"size": size, "color": colour.colour_of(cat), "opacity": opacity}))
    for layer, rows in highlight.layers().items():
        idx = np.asarray(rows, dtype=np.int64)
        scale = {"selection": 1.6, "search": 2.2, "neighbours": 2.4, "focus": 3.6}[layer]
        traces.append(go.Scattergl(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=HIGHLIGHT_NAMES[layer],
                                   legendgroup=layer, showlegend=first, customdata=custom[idx], hovertemplate=template,
                                   marker={**HIGHLIGHT[layer], "size": max(size * scale, 9.0)}))
    return traces


def maps_figure(panels: Sequence[MapPanel], dataset: Dataset, colour: Colouring, *, point_size: float = 5.0,
                highlight: Highlight | None = None, title: str = "", row_height: int = ROW_HEIGHT) -> go.Figure:
    """Several maps of the same crystals as one figure (subplots; one WebGL context), every point drawn.

    Numeric colours share one colour axis (``cmin``/``cmax`` = the colouring's range) and one
    colour bar; categorical colours are one trace per legend entry and panel, toggled together
    from one legend. Highlight layers (:class:`Highlight`) follow as ring traces in every panel.
    Hover shows id, formula, space group and the colour's value.

    Args:
        panels: The maps, drawn left to right, top to bottom (:func:`_grid`).
        dataset: The crystals; row ``i`` of every panel's coordinates is row ``i`` here.
        colour: What the point colours mean.
        point_size: Marker size in px.
        highlight: Crystals drawn over every map.
        title: Figure title (a single panel uses its own title when empty).
        row_height: Height of one row of panels in px.
    """
    from plotly.subplots import make_subplots

    if not panels:
        raise ValueError("a map figure needs at least one panel.")
    highlight = highlight or Highlight()
    n_rows, n_cols = _grid(len(panels))
    single = len(panels) == 1
    titles = [] if single else [f"<span style='color:{encoder_colour(p.encoder)}'>■</span> {p.title}"
                                if p.encoder else p.title for p in panels]
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles or None, horizontal_spacing=0.05,
                        vertical_spacing=min(0.3, 70 / (n_rows * row_height)))
    for i, panel in enumerate(panels):
        r, c = divmod(i, n_cols)
        for trace in _panel_traces(panel, i, dataset, colour, point_size, highlight):
            fig.add_trace(trace, row=r + 1, col=c + 1)
        x_title, y_title = axis_titles(panel.method)
        pca = panel.method == "pca"
        fig.update_xaxes(title_text=x_title, showticklabels=pca, zeroline=False, row=r + 1, col=c + 1,
                         title_standoff=4)
        axis = fig.get_subplot(r + 1, c + 1).xaxis.plotly_name.replace("axis", "")
        # equal axes for PCA, whose axes are embedding units; UMAP/t-SNE axes have no units to keep
        fig.update_yaxes(title_text=y_title, showticklabels=pca, zeroline=False, row=r + 1, col=c + 1,
                         scaleanchor=axis if pca else None, title_standoff=4)
    for note in fig.layout.annotations:  # subplot titles: left-aligned, readable
        note.update(font={"size": 13}, x=note.x - 0.5 / n_cols + 0.01, xanchor="left")
    bar = colour.kind == "numeric" and bool(np.isfinite(colour.values).any())
    bottom = 150 if bar else 100  # room for the legend, then the colour bar
    height = n_rows * row_height + 60 + bottom
    plot_h = height - 62 - bottom  # minus the top margin (title band) and the bottom one
    if bar:
        # horizontal, below the panels and the legend: all the width goes to the maps, nothing overlaps
        fig.update_layout(coloraxis={"colorscale": COLORSCALE, "cmin": colour.lo, "cmax": colour.hi, "colorbar": {
            "title": {"text": ("log10 " if colour.scale == "log" else "") + colour.label, "side": "top"},
            "orientation": "h", "thickness": 10, "len": 0.5, "x": 1.0, "xanchor": "right",
            "y": -84 / plot_h, "yanchor": "top"}})
    elif colour.kind == "numeric":
        fig.update_layout(coloraxis={"colorscale": COLORSCALE, "showscale": False})
    fig.update_layout(plot_bgcolor="#fafbfc", margin={"l": 10, "r": 10, "b": bottom},
                      legend={"orientation": "h", "y": -48 / plot_h, "yanchor": "top", "x": 0,
                              "font": {"size": 11}, "itemsizing": "constant"})
    place_title(fig, title or (panels[0].title if single else ""), height=height)
    if not (title or single):
        fig.update_layout(margin={"t": 60})
    return fig


def map_figure(coords: np.ndarray, dataset: Dataset, colour: Colouring, *, title: str, method: str,
               point_size: float = 5.0, highlight: Highlight | None = None, encoder: str | None = None) -> go.Figure:
    """One map as a figure (:func:`maps_figure` with a single panel)."""
    return maps_figure([MapPanel(np.asarray(coords), title, method, encoder)], dataset, colour,
                       point_size=point_size, highlight=highlight)


def selected_rows(points: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[int]]:
    """Dataset rows and panel indices of the points in a plotly selection event (in event order)."""
    rows, panels = [], []
    for point in points:
        data = point.get("customdata")
        if data is not None and len(data) > PANEL:
            rows.append(int(data[ROW]))
            panels.append(int(data[PANEL]))
    return rows, panels


def _params_text(params: Mapping[str, Any], shown: tuple[str, ...] | None = None) -> str:
    items = [(k, v) for k, v in params.items() if shown is None or k in shown]
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in items) or "no parameters"


MAIN_PARAMS = {"pca": (), "umap": ("n_neighbors", "min_dist"), "tsne": ("perplexity",)}
LIBRARY = {"pca": "scikit-learn", "umap": "umap-learn", "tsne": "openTSNE"}


def panel_caption(projection: Projection, scores: MapScores) -> str:
    """Method, main parameters, seed, library version, time, trustworthiness and separation."""
    method = projection.method
    lib = LIBRARY.get(method, "")
    version = projection.versions.get(lib, "unknown")
    params = _params_text(projection.params, MAIN_PARAMS.get(method))
    if method == "pca":
        params = ("standardised features (each dimension scaled to unit variance)"
                  if projection.params.get("standardize") else "raw features (centred, not scaled)")
    seconds = f"{projection.seconds:.2f} s" + (" (read from the store)" if projection.from_cache else "")
    trust = (f"trustworthiness {scores.trustworthiness:.3f} (k={scores.k}"
             + (f", {scores.sample_size:,} of {scores.n:,} rows)" if scores.sample_size < scores.n else ")"))
    if scores.label is None:
        sep = "separation: needs a categorical colour"
    elif math.isnan(scores.separation):
        sep = f"separation by {scores.label}: undefined (fewer than 2 classes)"
    else:
        sep = f"separation by {scores.label} {scores.separation:.3f} (silhouette)"
    return (f"**{METHOD_NAMES.get(method, method)}** · {params} · seed {projection.seed} · {lib} {version} · "
            f"{seconds} · {trust} · {sep}")


def coordinates_table(dataset: Dataset, maps: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """id, formula, then ``<map> x`` and ``<map> y`` for every map, one row per crystal."""
    out = dataset.table[["id", "formula"]].copy()
    for name, coords in maps.items():
        out[f"{name} x"] = np.asarray(coords)[:, 0]
        out[f"{name} y"] = np.asarray(coords)[:, 1]
    return out.reset_index(drop=True)


def sweep_grid_png(result: SweepResult, colour: Colouring, *, title: str, point_size: float = 5.0,
                   dpi: int = 110) -> bytes:
    """The sweep's aligned layouts as small multiples in one static PNG (matplotlib).

    Rows are seeds, columns are grid cells. Layouts arrive Procrustes-aligned to the reference
    (cell 0, first seed), so orientations match; each panel is then zoomed to its own points
    (equal aspect), because the least-squares fit shrinks layouts that agree poorly with the
    reference, which would otherwise shrink them to a speck. Under each panel: that run's
    trustworthiness and its cell's seed stability (mean Procrustes disparity).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result.runs.set_index(["cell", "seed"])
    n_rows, n_cols = len(result.seeds), len(result.cells)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols + 0.6, 2.7 * n_rows + 1.0), squeeze=False,
                             dpi=dpi)
    grid_names = [c for c in result.table.columns if c in result.cells[0]]
    size = (0.55 * point_size) ** 2
    for c, cell in enumerate(result.cells):
        stability = result.table.loc[c, "stability"]
        for r, seed in enumerate(result.seeds):
            ax, xy = axes[r, c], result.coords[c, seed]
            _scatter(ax, xy, colour, size)
            trust = runs.loc[(c, seed), "trustworthiness"]
            stab = "n/a" if math.isnan(stability) else f"{stability:.3f}"
            ax.set_xlabel(f"trust {trust:.3f} · stability {stab}", fontsize=8)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(_params_text({g: cell[g] for g in grid_names}), fontsize=9)
            if c == 0:
                ax.set_ylabel(f"seed {seed}", fontsize=9)
    # wrapped to the figure's width (~1 character per 6 px at 10 pt), so a 2-column grid keeps its title
    wrapped = textwrap.fill(title, width=max(40, int(fig.get_figwidth() * dpi / 6.5)))
    fig.suptitle(wrapped, fontsize=10)
    top = 1.0  # tight_layout leaves room for the (wrapped) suptitle itself
    if colour.kind == "categorical":
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour.colour_of(cat), label=cat)
                   for cat in colour.categories]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, top))
    elif math.isfinite(colour.lo):
        fig.tight_layout(rect=(0, 0, 0.92, top))
        mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(colour.lo, colour.hi))
        bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
        bar.set_label(("log10 " if colour.scale == "log" else "") + colour.label, fontsize=8)
    else:
        fig.tight_layout(rect=(0, 0, 1, top))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.15)  # the colour-bar label stays inside
    plt.close(fig)
    return buf.getvalue()


def _scatter(ax: Any, xy: np.ndarray, colour: Colouring, size: float) -> None:
    if colour.kind == "numeric":
        ok = np.isfinite(colour.values)
        ax.scatter(xy[~ok, 0], xy[~ok, 1], s=size, c=MISSING, linewidths=0, rasterized=True)
        ax.scatter(xy[ok, 0], xy[ok, 1], s=size, c=colour.values[ok], cmap="viridis", vmin=colour.lo,
                   vmax=colour.hi, linewidths=0, rasterized=True)
        return
    for cat in colour.categories:
        rows = colour.values == cat
        ax.scatter(xy[rows, 0], xy[rows, 1], s=size, c=colour.colour_of(cat), linewidths=0, rasterized=True)
