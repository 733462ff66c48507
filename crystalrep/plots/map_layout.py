"""Layout of map figures: the panel grid, axis titles, the shared colour bar and legend, notes on panels.

No Streamlit and no analysis imports here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from crystalrep.plots.map_captions import METHOD_NAMES
from crystalrep.plots.style import COLORSCALE, Colouring, place_title

if TYPE_CHECKING:
    import plotly.graph_objects as go


def axis_titles(method: str) -> tuple[str, str]:
    """``("PC1", "PC2")`` for PCA, ``("UMAP 1", "UMAP 2")`` and so on."""
    if method == "pca":
        return "PC1", "PC2"
    name = METHOD_NAMES.get(method, method)
    return f"{name} 1", f"{name} 2"


def grid(n: int) -> tuple[int, int]:
    """(rows, columns) of ``n`` panels: one row up to 3, then 2 × 2, then rows of 3."""
    cols = n if n <= 3 else (2 if n == 4 else 3)
    return math.ceil(n / cols), cols


def panel_note(fig: go.Figure, text: str, *, row: int, col: int) -> None:
    """A small note in the top-right corner inside a panel (e.g. how many points it draws)."""
    sub = fig.get_subplot(row, col)
    xref, yref = sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")
    fig.add_annotation(text=text, xref=f"{xref} domain", yref=f"{yref} domain", x=0.99, y=0.99, xanchor="right",
                       yanchor="top", showarrow=False, font={"size": 11, "color": "#3d434b"},
                       bgcolor="rgba(255,255,255,0.8)", borderpad=2)


def finish_layout(fig: go.Figure, colour: Colouring, *, n_rows: int, n_cols: int, row_height: int, title: str,
                  titled: bool) -> None:
    """Subplot titles, the horizontal colour bar and legend below the panels, height and title.

    Args:
        fig: The map figure with its traces.
        colour: The colouring (a numeric one with values gets a colour bar).
        n_rows: Rows of panels.
        n_cols: Columns of panels.
        row_height: Height of one row of panels in px.
        title: Figure title.
        titled: Whether a title band is kept at the top (otherwise the top margin fits the subplot titles).
    """
    for note in fig.layout.annotations:  # subplot titles: left-aligned, readable
        if note.xref == "paper":
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
    place_title(fig, title, height=height)
    if not titled:
        fig.update_layout(margin={"t": 60})
