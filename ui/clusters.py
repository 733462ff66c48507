"""Cached clustering for the Clusters page, keyed by the embedding's store key and the parameters.

The embedding's store key (dataset fingerprint + encoder fingerprint) identifies the array, so a
re-embedded dataset or a retrained checkpoint never gets a stale result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from crystalrep.analysis import clusters
from ui import embeddings
from ui.cache import DatasetRef, dataset

ENCODER = "clusters.encoder"
METHOD = "clusters.method"
MIN_SIZE = "clusters.min_cluster_size"
K_RANGE = "clusters.k_range"
LABEL = "clusters.label"
METHODS = {"hdbscan": "HDBSCAN", "kmeans": "k-means"}
MIN_CRYSTALS = 20  # fewer crystals than this cannot form more than a cluster or two
SWEEP_SIZES = (5, 10, 15, 25, 50, 100)
NOVELTY_K = 10
NOVELTY_TOP = 0.01


def _X(ref: DatasetRef, name: str) -> np.ndarray:
    return embeddings.cached(ref, name)[0]


@st.cache_data(max_entries=128, show_spinner="Clustering the embedding…")
def result(ref: DatasetRef, name: str, embedding_key: str, method: str, min_cluster_size: int,
           k_range: tuple[int, int]) -> clusters.ClusterResult:
    """HDBSCAN (``min_cluster_size``) or k-means (best silhouette for k in ``k_range``, inclusive)."""
    if method == "hdbscan":
        return clusters.hdbscan_clusters(_X(ref, name), min_cluster_size=min_cluster_size)
    return clusters.kmeans_clusters(_X(ref, name), k_range=range(k_range[0], k_range[1] + 1))


@st.cache_data(max_entries=512, show_spinner=False)
def _sweep_one(ref: DatasetRef, name: str, embedding_key: str, size: int) -> pd.DataFrame:
    return clusters.cluster_sweep(_X(ref, name), [size])


def sweep(ref: DatasetRef, name: str, n: int) -> pd.DataFrame:
    """:func:`cluster_sweep` over :data:`SWEEP_SIZES` (up to ``n``), one cached size at a time with progress."""
    key, sizes = embeddings.key(ref, name), [s for s in SWEEP_SIZES if s <= n]
    bar, parts = st.empty(), []
    for i, size in enumerate(sizes):
        bar.progress(i / len(sizes), text=f"HDBSCAN at min_cluster_size {size} ({i + 1} of {len(sizes)})…")
        parts.append(_sweep_one(ref, name, key, size))
    bar.empty()
    return pd.concat(parts, ignore_index=True)


@st.cache_data(max_entries=64, show_spinner="Scoring novelty (distance to the 10th neighbour)…")
def novelty(ref: DatasetRef, name: str, embedding_key: str) -> clusters.Novelty:
    """Distance to the :data:`NOVELTY_K`-th neighbour; the top :data:`NOVELTY_TOP` flagged."""
    return clusters.novelty(_X(ref, name), k=NOVELTY_K, top=NOVELTY_TOP)


@st.cache_data(max_entries=128, show_spinner=False)
def agreement(ref: DatasetRef, labels_pred: np.ndarray, label: str) -> tuple[pd.DataFrame, float]:
    """Cross-tab of clusters × ``label`` and their adjusted mutual information."""
    truth = dataset(ref).table[label]
    return clusters.crosstab(labels_pred, truth), clusters.adjusted_mutual_info(labels_pred, truth)
