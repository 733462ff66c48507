"""Clusters page glue: the controls (all in the URL), cached clustering, and the map coloured by cluster.

Cached functions are keyed by the embedding's store key (dataset fingerprint + encoder
fingerprint), so a re-embedded dataset or a retrained checkpoint never gets a stale result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from crystalrep.analysis import cluster_cache, clusters
from crystalrep.plots.data import label_name
from crystalrep.plots.projections import METHOD_NAMES, Highlight
from ui import embeddings, urlstate
from ui import projections as maps
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.datasets import Dataset

ENCODER = "clusters.encoder"
METHOD = "clusters.method"
MIN_SIZE = "clusters.min_cluster_size"
K_RANGE = "clusters.k_range"
K = "clusters.k"
LABEL = "clusters.label"
METHODS = {"hdbscan": "HDBSCAN", "kmeans": "k-means"}
MIN_CRYSTALS = 20  # fewer crystals than this cannot form more than a cluster or two
SWEEP_SIZES = (5, 10, 15, 25, 50, 100)
NOVELTY_K = 10
NOVELTY_TOP = 0.01
BACKGROUND_ABOVE = 20_000  # crystals above which clustering runs as a background task (minutes of CPU)


def _X(ref: DatasetRef, name: str) -> np.ndarray:
    return embeddings.cached(ref, name)[0]


@dataclass(frozen=True)
class Choice:
    """What the controls ask for: encoder, method and its parameters, and the label to compare with."""

    encoder: str
    method: str
    min_cluster_size: int
    k_range: tuple[int, int]
    k: int | None
    label: str | None


def controls(ds: Dataset, names: list[str], labels: list[str]) -> Choice:
    """Draw the clustering controls, each bound to the URL (``enc``, ``method``, ``mcs``, ``krange``, ``k``, ``label``)."""
    n = len(ds)
    c1, c2, c5 = st.columns([2, 2, 2], vertical_alignment="bottom")
    c3, c4 = st.columns([3, 2], vertical_alignment="bottom")
    urlstate.bind(ENCODER, "enc", names[0], valid=names)
    urlstate.bind(METHOD, "method", "hdbscan", valid=list(METHODS))
    name = c1.selectbox("Encoder", names, key=ENCODER)
    method = c2.segmented_control("Method", list(METHODS), format_func=METHODS.get, required=True, key=METHOD)
    size, k_range, k = 0, (0, 0), None
    if method == "hdbscan":
        hi = min(200, n // 2)
        size = urlstate.bind(MIN_SIZE, "mcs", min(15, hi), codec=urlstate.INT, valid=range(2, hi + 1))
        c3.slider("min_cluster_size", 2, hi, key=MIN_SIZE,
                  help="The smallest group HDBSCAN calls a cluster; smaller groups become noise.")
    else:
        top = min(30, n - 1)
        urlstate.bind(K_RANGE, "krange", (2, min(12, top)), codec=urlstate.INT_PAIR,
                      valid=lambda v: 2 <= v[0] <= v[1] <= top)
        k_range = c3.slider("k range scored by silhouette", 2, top, key=K_RANGE)
        k = urlstate.bind(K, "k", None, codec=urlstate.OPTIONAL_INT, valid=lambda v: v is None or 2 <= v <= top)
        c4.selectbox("k", [None, *range(2, top + 1)], key=K, format_func=lambda v: "best silhouette" if v is None
                     else str(v), help="Set k, or let the best silhouette in the range choose it (the curve shows all).")
    label = None
    if labels:
        urlstate.bind(LABEL, "label", labels[0], valid=labels)
        label = c5.selectbox("Compare with", labels, key=LABEL, format_func=lambda c: label_name(c, ds))
    return Choice(name, method, int(size), (int(k_range[0]), int(k_range[1])), k, label)


@st.cache_data(max_entries=128, show_spinner="Clustering the embedding…")
def result(ref: DatasetRef, name: str, embedding_key: str, method: str, min_cluster_size: int,
           k_range: tuple[int, int], k: int | None = None) -> clusters.ClusterResult:
    """HDBSCAN (``min_cluster_size``) or k-means (``k``, or the best silhouette in ``k_range``, inclusive)."""
    return cluster_cache.clusters_cached(_X(ref, name), embedding_key, method=method, min_cluster_size=min_cluster_size,
                                         k=k, k_range=range(k_range[0], k_range[1] + 1))[0]


def of(ref: DatasetRef, choice: Choice) -> clusters.ClusterResult:
    """:func:`result` for the controls' choice."""
    return result(ref, choice.encoder, embeddings.key(ref, choice.encoder), choice.method, choice.min_cluster_size,
                  choice.k_range, choice.k)


# Shared, not copied (cache_resource): unpickling a 50k-point figure on every hit costs more than drawing it once.
@st.cache_resource(max_entries=16, show_spinner=False)
def map_figure(ref: DatasetRef, choice: Choice, panel: maps.Panel, embedding_key: str,
               highlight: Highlight) -> go.Figure:
    """The cluster map: the panel's coordinates coloured by cluster, noise grey, highlights on top; read-only."""
    from crystalrep.plots.clusters import cluster_map_figure

    coords = maps.projection(ref, panel).coords
    title = f"{choice.encoder} · {METHOD_NAMES[panel.method]}, coloured by {METHODS[choice.method]} cluster"
    return cluster_map_figure(coords, dataset(ref), of(ref, choice).labels, title=title, method=panel.method,
                              highlight=highlight)


@st.cache_data(max_entries=512, show_spinner=False)
def _sweep_one(ref: DatasetRef, name: str, embedding_key: str, size: int) -> pd.DataFrame:
    return cluster_cache.sweep_cached(_X(ref, name), embedding_key, [size])


def sweep(ref: DatasetRef, name: str, n: int) -> pd.DataFrame:
    """:func:`cluster_sweep` over :data:`SWEEP_SIZES` (up to ``n``), one cached size at a time with progress."""
    key, sizes = embeddings.key(ref, name), sweep_sizes(n)
    bar, parts = st.empty(), []
    for i, size in enumerate(sizes):
        bar.progress(i / len(sizes), text=f"HDBSCAN at min_cluster_size {size} ({i + 1} of {len(sizes)})…")
        parts.append(_sweep_one(ref, name, key, size))
    bar.empty()
    return pd.concat(parts, ignore_index=True)


@st.cache_data(max_entries=64, show_spinner="Scoring novelty (distance to the 10th neighbour)…")
def novelty(ref: DatasetRef, name: str, embedding_key: str) -> clusters.Novelty:
    """Distance to the :data:`NOVELTY_K`-th neighbour; the top :data:`NOVELTY_TOP` flagged."""
    return cluster_cache.novelty_cached(_X(ref, name), embedding_key, k=NOVELTY_K, top=NOVELTY_TOP)[0]


@st.cache_data(max_entries=128, show_spinner=False)
def agreement(ref: DatasetRef, labels_pred: np.ndarray, label: str) -> tuple[pd.DataFrame, float]:
    """Cross-tab of clusters × ``label`` and their adjusted mutual information."""
    truth = dataset(ref).table[label]
    return clusters.crosstab(labels_pred, truth), cluster_cache.ami_cached(labels_pred, truth)[0]


def sweep_sizes(n: int) -> list[int]:
    """The :data:`SWEEP_SIZES` that fit ``n`` crystals."""
    return [s for s in SWEEP_SIZES if s <= n]


def ready(ref: DatasetRef, choice: Choice, n: int) -> bool:
    """Whether the store holds everything the page draws for ``choice``: clusters, novelty, and (HDBSCAN) the sweep."""
    key, dims = embeddings.key(ref, choice.encoder), clusters.hdbscan_pca_dims(n)  # what "auto" resolves to
    kinds = [(cluster_cache.KIND, cluster_cache.clusters_key(
                 key, method=choice.method, min_cluster_size=choice.min_cluster_size, k=choice.k,
                 k_range=range(choice.k_range[0], choice.k_range[1] + 1),
                 pca_dims=dims if choice.method == "hdbscan" else None)),
             (cluster_cache.NOVELTY_KIND, cluster_cache.novelty_key(key, k=NOVELTY_K, top=NOVELTY_TOP))]
    if choice.method == "hdbscan":
        kinds += [(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key(key, s, pca_dims=dims)) for s in sweep_sizes(n)]
    return all(cluster_cache.is_stored(kind, k) for kind, k in kinds)


def task(ref: DatasetRef, choice: Choice, n: int) -> tuple[str, list[str]]:
    """Background task name and ``crystalrep cluster`` arguments that store what :func:`ready` looks for.

    The page compares with its label itself, so the run compares with none (``--label ""``) and one
    run serves every label.
    """
    from ui.background_task import task_key

    argv = ["cluster", "--dataset", ref.name, "--encoder", choice.encoder, "--method", choice.method,
            "--label", "", "--top", str(NOVELTY_TOP), "--json"]
    if choice.method == "hdbscan":
        argv += ["--min-cluster-size", str(choice.min_cluster_size), "--sweep", ",".join(map(str, sweep_sizes(n)))]
    else:
        argv += ["--k-min", str(choice.k_range[0]), "--k-max", str(choice.k_range[1])]
        argv += ["--k", str(choice.k)] if choice.k is not None else []
    return task_key("clusters", {"embedding": embeddings.key(ref, choice.encoder), "argv": argv}), argv


def hdbscan_pca_dims(n: int) -> int | None:
    """Principal components HDBSCAN uses on ``n`` crystals (``None``: every dimension)."""
    return clusters.hdbscan_pca_dims(n)


def space_words(method: str, pca_dims: int | None) -> str:
    """Where the clusters were found, in words: the whole embedding, or (HDBSCAN on a big set) its first principal components."""
    if method == "hdbscan" and pca_dims:
        return (f"on the embedding's first {pca_dims} principal components (HDBSCAN above "
                f"{clusters.PCA_ABOVE:,} crystals: on every dimension it takes minutes per 50,000)")
    return "in every dimension"
