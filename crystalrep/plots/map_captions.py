"""Words and tables that go with a map: the caption stating how it was made and what to believe, its coordinates.

No Streamlit and no analysis imports here (pages pass results in).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset

if TYPE_CHECKING:
    from crystalrep.analysis.map_quality import MapScores
    from crystalrep.analysis.projections import Projection

METHOD_NAMES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
MAIN_PARAMS = {"pca": (), "umap": ("n_neighbors", "min_dist"), "tsne": ("perplexity",)}
LIBRARY = {"pca": "scikit-learn", "umap": "umap-learn", "tsne": "openTSNE"}


def params_text(params: Mapping[str, Any], shown: tuple[str, ...] | None = None) -> str:
    """``"n_neighbors=15, min_dist=0.1"``: the parameters (those in ``shown`` if given), floats as ``%g``."""
    items = [(k, v) for k, v in params.items() if shown is None or k in shown]
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in items) or "no parameters"


def panel_caption(projection: Projection, scores: MapScores) -> str:
    """Method, main parameters, seed, library version, time, trustworthiness and separation."""
    method = projection.method
    lib = LIBRARY.get(method, "")
    version = projection.versions.get(lib, "unknown")
    params = params_text(projection.params, MAIN_PARAMS.get(method))
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
