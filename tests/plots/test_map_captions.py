"""Map captions and tables: the caption states method, parameters, seed, library, time and scores; one
coordinate column pair per map."""

from __future__ import annotations

import numpy as np
import pytest

from crystalrep.analysis.map_quality import score_map
from crystalrep.analysis.projections import project
from crystalrep.datasets import Dataset
from crystalrep.plots import map_captions as mc


def test_panel_caption_states_method_params_seed_version_time_and_scores(ds: Dataset) -> None:
    X = np.random.default_rng(0).normal(size=(len(ds), 6))
    proj = project(X, method="pca", seed=3)
    scores = score_map(X, proj.coords, labels=ds.table["crystal_system"], label="crystal system")
    text = mc.panel_caption(proj, scores)
    assert "standardised features" in text
    assert "raw features (centred, not scaled)" in mc.panel_caption(
        project(X, method="pca", params={"standardize": False}), scores)
    assert "**PCA**" in text and "seed 3" in text and f"scikit-learn {proj.versions['scikit-learn']}" in text
    assert f"trustworthiness {scores.trustworthiness:.3f}" in text and "separation by crystal system" in text
    umap_like = type(proj)(proj.coords, "umap", {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean",
                                                 "knn": "auto"}, 0, 61.0, {"umap-learn": "0.5.7"}, from_cache=True)
    text = mc.panel_caption(umap_like, score_map(X, proj.coords))
    assert "n_neighbors=15, min_dist=0.1 ·" in text and "umap-learn 0.5.7" in text and "read from the store" in text
    assert "needs a categorical colour" in text


def test_coordinates_table_has_one_column_pair_per_map(ds: Dataset, coords: np.ndarray) -> None:
    table = mc.coordinates_table(ds, {"magpie PCA": coords, "soap PCA": coords * 2})
    assert list(table.columns) == ["id", "formula", "magpie PCA x", "magpie PCA y", "soap PCA x", "soap PCA y"]
    assert table["soap PCA y"].tolist() == pytest.approx((coords[:, 1] * 2).tolist())
