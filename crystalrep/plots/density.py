"""Every point of a big map as one image: counts per pixel, coloured like the points, drawn under a sample.

The aggregation is a 2-D histogram (``np.bincount`` over pixel indices; 1M points in well under
a second, no compilation) shaded in the map's own colours: a numeric colour is the mean of the
pixel's values on the map's colour scale (Viridis between the colouring's ``lo`` and ``hi``),
a categorical one is the count-weighted blend of its categories' legend colours (as datashader's
``count_cat`` does). Opacity grows with the log of the count, so dense cores and lone outliers
are both visible. The image is a PNG data URI placed in data coordinates under the points.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crystalrep.plots.style import MISSING, Colouring

if TYPE_CHECKING:
    import plotly.graph_objects as go

VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725")  # plotly's sequential Viridis (COLORSCALE), so image and colour bar agree
PIXELS = (360, 300)  # columns, rows of one panel's image; the browser stretches it over the panel
MIN_ALPHA, MAX_ALPHA = 0.25, 0.95
PAD = 0.02  # fraction of the data range added on each side


@dataclass(frozen=True)
class DensityImage:
    """One panel's density image and where it sits in data coordinates.

    Attributes:
        source: ``data:image/png;base64,…``.
        x_range: Left and right data edges.
        y_range: Bottom and top data edges.
        counts: Points per pixel, shape ``(rows, columns)`` with row 0 at the top.
    """

    source: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    counts: np.ndarray

    def layout_image(self, xref: str, yref: str) -> dict[str, object]:
        """The image as a plotly layout image under the traces of the axes ``xref``/``yref``."""
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return {"source": self.source, "xref": xref, "yref": yref, "x": x0, "y": y1, "sizex": x1 - x0,
                "sizey": y1 - y0, "sizing": "stretch", "layer": "below", "xanchor": "left", "yanchor": "top"}


def _rgb(hex_colour: str) -> np.ndarray:
    text = hex_colour.lstrip("#")
    return np.array([int(text[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


def extent(xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Padded data ranges of the finite points (``(-1, 1)`` for a degenerate axis)."""
    finite = xy[np.isfinite(xy).all(axis=1)]
    out = []
    for axis in (0, 1):
        lo, hi = (float(finite[:, axis].min()), float(finite[:, axis].max())) if len(finite) else (-1.0, 1.0)
        span = hi - lo or max(abs(lo), 1.0)
        out.append((lo - PAD * span, hi + PAD * span))
    return out[0], out[1]


def _pixels(xy: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float],
            shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel index of each point (row 0 at the top) and which points fall inside."""
    cols, rows = shape
    fx = (xy[:, 0] - x_range[0]) / (x_range[1] - x_range[0])
    fy = (y_range[1] - xy[:, 1]) / (y_range[1] - y_range[0])
    inside = np.isfinite(fx) & np.isfinite(fy) & (fx >= 0) & (fx <= 1) & (fy >= 0) & (fy <= 1)
    ix = np.minimum((fx[inside] * cols).astype(np.int64), cols - 1)
    iy = np.minimum((fy[inside] * rows).astype(np.int64), rows - 1)
    return iy * cols + ix, inside


def _colours(colour: Colouring, inside: np.ndarray, pixel: np.ndarray, size: int) -> np.ndarray:
    """Mean RGB per pixel (``size`` pixels), from each point's colour."""
    if colour.kind == "numeric":
        values = np.asarray(colour.values, dtype=np.float64)[inside]
        ok = np.isfinite(values)
        span = (colour.hi - colour.lo) or 1.0
        pos = np.clip((values[ok] - colour.lo) / span, 0.0, 1.0) if np.isfinite(span) else np.zeros(int(ok.sum()))
        mean = np.bincount(pixel[ok], weights=pos, minlength=size) / np.maximum(
            np.bincount(pixel[ok], minlength=size), 1)
        stops = np.array([_rgb(c) for c in VIRIDIS])
        grid = np.linspace(0.0, 1.0, len(VIRIDIS))
        rgb = np.stack([np.interp(mean, grid, stops[:, k]) for k in range(3)], axis=1)
        valued = np.bincount(pixel[ok], minlength=size) > 0
        rgb[~valued] = _rgb(MISSING)  # pixels holding only crystals without a value
        return rgb
    import pandas as pd

    entries = np.asarray(colour.values, dtype=object)[inside]
    codes = pd.Categorical(entries, categories=colour.categories).codes.astype(np.int64)
    table = np.array([_rgb(colour.colour_of(cat)) for cat in colour.categories] + [_rgb(MISSING)])
    each = table[codes]  # code -1 (not a legend entry) is the last row: grey
    counts = np.maximum(np.bincount(pixel, minlength=size), 1)
    return np.stack([np.bincount(pixel, weights=each[:, k], minlength=size) / counts for k in range(3)], axis=1)


def density_image(xy: np.ndarray, colour: Colouring, *, x_range: tuple[float, float] | None = None,
                  y_range: tuple[float, float] | None = None, pixels: tuple[int, int] = PIXELS) -> DensityImage:
    """Aggregate every point of a map into one RGBA image coloured like its points.

    Args:
        xy: Map coordinates, one row per crystal (the rows of ``colour``).
        colour: What each point's colour means (numeric mean or categorical blend per pixel).
        x_range: Data range of the image's columns (default: the padded extent of ``xy``).
        y_range: Data range of its rows.
        pixels: Image columns and rows.

    Raises:
        ValueError: ``xy`` is not ``(n, 2)`` or does not match the colouring.
    """
    from PIL import Image

    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(colour.values):
        raise ValueError(f"need (n, 2) coordinates for {len(colour.values)} coloured rows, got {xy.shape}.")
    if x_range is None or y_range is None:
        x_range, y_range = extent(xy)
    cols, rows = pixels
    pixel, inside = _pixels(xy, x_range, y_range, pixels)
    counts = np.bincount(pixel, minlength=cols * rows)
    rgb = _colours(colour, inside, pixel, cols * rows)
    peak = max(1, int(counts.max()) if counts.size else 1)
    alpha = np.where(counts > 0, MIN_ALPHA + (MAX_ALPHA - MIN_ALPHA) * np.log1p(counts) / np.log1p(peak), 0.0)
    rgba = np.concatenate([rgb, 255 * alpha[:, None]], axis=1).round().clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba.reshape(rows, cols, 4), mode="RGBA").save(buf, format="PNG", optimize=False)
    source = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return DensityImage(source, (float(x_range[0]), float(x_range[1])), (float(y_range[0]), float(y_range[1])),
                        counts.reshape(rows, cols))


def add_density(fig: go.Figure, image: DensityImage, *, row: int, col: int) -> None:
    """Put ``image`` under the traces of subplot (``row``, ``col``) and fix its axes to the image's extent."""
    sub = fig.get_subplot(row, col)
    xref, yref = sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")
    fig.add_layout_image(image.layout_image(xref, yref))
    fig.update_xaxes(range=list(image.x_range), autorange=False, row=row, col=col)
    fig.update_yaxes(range=list(image.y_range), autorange=False, row=row, col=col)
