"""The sweep grid: one PNG of seeds × parameter values, its title and colour-bar label inside the image."""

from __future__ import annotations

import io

import numpy as np
import pytest

from crystalrep.analysis.sweeps import sweep
from crystalrep.datasets import Dataset
from crystalrep.plots import style
from crystalrep.plots import sweep_grid as sg


@pytest.mark.parametrize("column", ["volume", "kind"])
def test_sweep_grid_is_one_png(ds: Dataset, column: str) -> None:
    X = np.random.default_rng(0).normal(size=(len(ds), 6))
    result = sweep(X, method="tsne", grid={"perplexity": [2.0, 5.0]}, seeds=[0, 1])
    png = sg.sweep_grid_png(result, style.colouring(ds, column), title="t-SNE sweep")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_two_column_sweep_grid_keeps_its_title_and_colour_bar_label(ds: Dataset) -> None:
    from PIL import Image

    X = np.random.default_rng(0).normal(size=(len(ds), 6))
    result = sweep(X, method="tsne", grid={"perplexity": [2.0, 5.0]}, seeds=[0, 1])
    title = "t-SNE of magpie on default: seeds × perplexity (rotated onto the top-left panel; each panel zoomed)"
    png = sg.sweep_grid_png(result, style.colouring(ds, "volume"), title=title)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    ink = np.flatnonzero((image < 200).any(axis=0))
    # something is drawn near both edges (title / colour-bar label), and nothing touches them (no cut)
    assert ink.min() > 2 and ink.max() < image.shape[1] - 3
    assert (image[:25] < 200).any()  # the (wrapped) title sits at the top
