"""One look for every chart: encoder colours, cluster colours, column names, title placement."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.datasets import Dataset, PropertyInfo
from crystalrep.plots import style
from crystalrep.plots.data import label_name


@pytest.fixture(scope="module")
def tiny(tiny_structures: list[Structure]) -> Dataset:
    return Dataset.from_structures("tiny", [f"t{i}" for i in range(5)], tiny_structures,
                                   properties={"volume": [s.volume for s in tiny_structures]},
                                   property_info={"volume": PropertyInfo("volume", unit="Å^3")})


def test_encoder_colours_are_fixed_distinct_and_stable_for_checkpoints() -> None:
    built_in = [style.encoder_colour(e) for e in ("cgcnn-random", "magpie", "soap", "chgnet", "sevennet")]
    assert len(set(built_in)) == 5
    a = style.encoder_colour("cgcnn@denoise-20240101")
    assert a == style.encoder_colour("cgcnn@denoise-20240101") and a in style.PRETRAINED_COLOURS
    assert a not in built_in


def test_one_name_per_column_everywhere(tiny: Dataset) -> None:
    assert label_name("crystal_system") == "crystal system" == style.column_label(tiny, "crystal_system")
    assert label_name("spacegroup") == "space group" == style.column_label(tiny, "spacegroup")
    assert label_name("volume", tiny) == "volume (Å^3)" == style.column_label(tiny, "volume")
    assert label_name("some_new_column") == "some new column"
    with pytest.raises(ValueError, match="cannot colour by"):
        style.column_label(tiny, "id")


def test_cluster_colouring_has_noise_grey_and_a_colour_per_cluster() -> None:
    labels = np.array([-1, 0, 1, 2, 0, -1])
    colour = style.cluster_colouring(labels)
    assert colour.categories == ["noise", "cluster 0", "cluster 1", "cluster 2"]
    assert colour.colour_of("noise") == style.NOISE
    assert len({colour.colour_of(c) for c in colour.categories}) == 4
    assert "3 clusters, 2 crystals of noise drawn grey" in colour.caption


def test_beyond_twenty_clusters_the_largest_keep_colours_and_the_rest_share_one() -> None:
    sizes = {7: 50, 3: 40, **{c: 5 for c in range(100, 130)}}  # 32 clusters: 7 and 3 the largest
    labels = np.concatenate([np.full(s, c) for c, s in sizes.items()] + [np.full(9, -1)])
    colour = style.cluster_colouring(labels)
    # drawn in this order: noise, the smaller clusters under the named ones, then those by size
    assert colour.categories[:4] == ["noise", "13 smaller clusters", "cluster 7", "cluster 3"]
    assert len(colour.categories) == 1 + 1 + 19 and colour.colour_of("13 smaller clusters") == style.OTHER
    assert len({colour.colour_of(c) for c in colour.categories[2:]}) == 19
    lumped = colour.values == "13 smaller clusters"
    assert lumped.sum() == 13 * 5 and set(colour.values[labels == 7]) == {"cluster 7"}
    assert colour.text[int(np.flatnonzero(lumped)[0])].startswith("cluster 1")  # hover keeps the real cluster
    assert "32 clusters; the 19 largest in their own colours, the other 13 in one dark grey" in colour.caption
    assert "9 crystals of noise drawn grey" in colour.caption


def test_titles_sit_below_the_toolbar() -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    style.place_title(fig, "title", height=400)
    assert fig.layout.title.yref == "container" and fig.layout.title.yanchor == "top"
    assert (1 - fig.layout.title.y) * 400 == pytest.approx(style.MODEBAR_CLEARANCE)
    assert fig.layout.margin.t >= style.MODEBAR_CLEARANCE + 20
