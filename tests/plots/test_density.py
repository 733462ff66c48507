"""The density image under a big map: counts every point, colours like the points, sits in data coordinates."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from crystalrep.plots import density
from crystalrep.plots.style import Colouring


def _numeric(values: np.ndarray) -> Colouring:
    return Colouring("v", "v", "numeric", values, [""] * len(values), lo=0.0, hi=1.0)


def test_every_point_is_counted_once_in_the_right_pixel() -> None:
    xy = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 5 + [[np.nan, 0.5]])
    img = density.density_image(xy, _numeric(np.zeros(len(xy))), x_range=(0.0, 1.0), y_range=(0.0, 1.0),
                                pixels=(4, 2))
    assert img.counts.shape == (2, 4) and img.counts.sum() == 8  # the NaN point is not drawn
    assert img.counts[1, 0] == 3 and img.counts[0, 3] == 5  # row 0 is the top of the map


def test_the_image_is_a_png_coloured_by_the_mean_value_and_transparent_where_empty() -> None:
    from PIL import Image

    xy = np.array([[0.1, 0.5], [0.9, 0.5]])
    img = density.density_image(xy, _numeric(np.array([0.0, 1.0])), x_range=(0.0, 1.0), y_range=(0.0, 1.0),
                                pixels=(2, 1))
    assert img.source.startswith("data:image/png;base64,")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(img.source.split(",", 1)[1]))))
    assert pixels.shape == (1, 2, 4)
    assert tuple(pixels[0, 0, :3]) == (0x44, 0x01, 0x54) and tuple(pixels[0, 1, :3]) == (0xFD, 0xE7, 0x25)
    empty = density.density_image(xy, _numeric(np.array([0.0, 1.0])), x_range=(0.0, 1.0), y_range=(0.0, 1.0),
                                  pixels=(3, 1))
    alpha = np.asarray(Image.open(io.BytesIO(base64.b64decode(empty.source.split(",", 1)[1]))))[0, :, 3]
    assert alpha[1] == 0 and alpha[0] > 0


def test_categories_blend_their_legend_colours() -> None:
    values = np.array(["a", "b", "a", "b"], dtype=object)
    colour = Colouring("k", "k", "categorical", values, list(values), categories=["a", "b"],
                       colours={"a": "#ff0000", "b": "#0000ff"})
    rgb = density._colours(colour, np.ones(4, dtype=bool), np.zeros(4, dtype=np.int64), 1)
    assert rgb[0].tolist() == pytest.approx([127.5, 0.0, 127.5])


def test_the_layout_image_spans_the_data_range() -> None:
    xy = np.random.default_rng(0).normal(size=(1000, 2))
    img = density.density_image(xy, _numeric(np.zeros(1000)))
    spec = img.layout_image("x2", "y2")
    assert spec["xref"] == "x2" and spec["layer"] == "below" and spec["sizing"] == "stretch"
    assert spec["x"] < xy[:, 0].min() and spec["x"] + spec["sizex"] > xy[:, 0].max()
    assert spec["y"] > xy[:, 1].max() and spec["y"] - spec["sizey"] < xy[:, 1].min()
    with pytest.raises(ValueError, match="coordinates"):
        density.density_image(xy[:10], _numeric(np.zeros(1000)))
