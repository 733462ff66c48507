"""Figures and tables for the Clusters page.

The map by cluster, the cluster-count curve, silhouette by k, the cross-tab and the outliers.

No Streamlit here; ``tests/plots/test_clusters.py`` checks that the data inside follows the inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crystalrep.plots.projections import Highlight, map_figure
from crystalrep.plots.style import cluster_colouring, place_title

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.analysis.clusters import Novelty
    from crystalrep.datasets import Dataset

LABEL_COLUMNS = ("crystal_system", "spacegroup", "prototype", "chemsys")
MAX_CLUSTERS = 30  # cross-tab rows drawn; the rest are summed into one row
MAX_LABELS = 25  # cross-tab columns drawn; the rest are summed into one column
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def label_columns(dataset: Dataset) -> list[str]:
    """Categorical columns to compare clusters with: symmetry, prototype, chemistry, categorical properties."""
    names = [c for c in LABEL_COLUMNS if c in dataset.table.columns]
    names += [p for p in dataset.property_names("categorical") if p not in names]
    return [c for c in names if dataset.table[c].dropna().nunique() >= 2]


def cluster_map_figure(coords: np.ndarray, dataset: Dataset, labels: np.ndarray, *, title: str, method: str,
                       point_size: float = 5.0, highlight: Highlight | None = None) -> go.Figure:
    """A 2-D map coloured by cluster (one legend entry per cluster, noise grey), highlights on top.

    The clusters come from the full embedding; the map only places the points, so a cluster
    split across the map says something about the map, not about the clustering.
    """
    return map_figure(coords, dataset, cluster_colouring(labels), title=title, method=method,
                      point_size=point_size, highlight=highlight)


def cluster_count_figure(sweep: pd.DataFrame, *, chosen: int, n_clusters: int, noise: float) -> go.Figure:
    """Clusters (and noise fraction) against HDBSCAN's ``min_cluster_size``, the chosen value marked.

    Args:
        sweep: Rows of :func:`crystalrep.analysis.clusters.cluster_sweep`.
        chosen: The ``min_cluster_size`` in use.
        n_clusters: Clusters found at ``chosen``.
        noise: Noise fraction at ``chosen``.

    Returns:
        Traces: cluster count (``name="clusters"``), noise fraction on the right axis
        (``name="noise"``), then the chosen point (``name="chosen"``).
    """
    import plotly.graph_objects as go

    rows = pd.concat([sweep, pd.DataFrame([{"min_cluster_size": chosen, "n_clusters": n_clusters,
                                            "noise_fraction": noise}])])
    rows = rows.drop_duplicates("min_cluster_size").sort_values("min_cluster_size")
    fig = go.Figure([
        go.Scatter(x=rows["min_cluster_size"], y=rows["n_clusters"], mode="lines+markers", name="clusters",
                   line={"color": "#3b6ea8", "shape": "hv"}),
        go.Scatter(x=rows["min_cluster_size"], y=rows["noise_fraction"], mode="lines+markers", name="noise",
                   yaxis="y2", line={"color": "#9a9a9a", "dash": "dot", "shape": "hv"}),
        go.Scatter(x=[chosen], y=[n_clusters], mode="markers", name="chosen",
                   marker={"color": "#d1495b", "size": 13, "symbol": "diamond"},
                   hovertemplate=f"chosen: min_cluster_size {chosen}<br>{n_clusters} clusters<extra></extra>"),
    ])
    fig.add_vline(x=chosen, line={"color": "#d1495b", "dash": "dash", "width": 1})
    fig.update_layout(margin=MARGIN, legend={"orientation": "h", "y": -0.25},
                      yaxis2={"title": "noise fraction", "overlaying": "y", "side": "right", "range": [-0.03, 1.05],
                              "tickvals": [0, 0.25, 0.5, 0.75, 1], "tickformat": ".0%", "showgrid": False})
    place_title(fig, "Cluster count against min_cluster_size (HDBSCAN)", height=360)
    sizes = rows["min_cluster_size"].tolist()
    fig.update_xaxes(type="log", title_text="min_cluster_size (log scale)", tickvals=sizes, ticktext=[str(s) for s in sizes])
    fig.update_yaxes(title_text="clusters", rangemode="tozero", selector={"anchor": "x"})
    return fig


def silhouette_k_figure(scores: dict[int, float], *, chosen: int) -> go.Figure:
    """k-means silhouette for each k tried: the k in use (diamond) and, if another, the best one (ring)."""
    import plotly.graph_objects as go

    ks = sorted(scores)
    best = max(ks, key=lambda k: (np.nan_to_num(scores[k], nan=-np.inf), -k))
    traces = [go.Scatter(x=ks, y=[scores[k] for k in ks], mode="lines+markers", name="silhouette",
                         line={"color": "#3b6ea8"}),
              go.Scatter(x=[chosen], y=[scores[chosen]], mode="markers", name="chosen",
                         marker={"color": "#d1495b", "size": 13, "symbol": "diamond"})]
    if best != chosen:
        traces.append(go.Scatter(x=[best], y=[scores[best]], mode="markers", name="best silhouette",
                                 marker={"color": "rgba(0,0,0,0)", "size": 16, "line": {"color": "#1b1f24", "width": 2}}))
    fig = go.Figure(traces)
    title = (f"k-means: silhouette for each k (k = {chosen}, the best)" if best == chosen
             else f"k-means: silhouette for each k (k = {chosen} chosen; the best is k = {best})")
    fig.update_layout(margin=MARGIN, showlegend=False)
    place_title(fig, title, height=360)
    fig.update_xaxes(title_text="k", dtick=1)
    fig.update_yaxes(title_text="silhouette")
    return fig


def _top(table: pd.DataFrame, axis: int, keep: int, other: str) -> pd.DataFrame:
    totals = table.sum(axis=1 - axis).sort_values(ascending=False, kind="stable")
    if len(totals) <= keep:
        return table.reindex(totals.index, axis=axis)
    head, rest = totals.index[:keep], totals.index[keep:]
    kept = table.reindex(head, axis=axis)
    extra = table.reindex(rest, axis=axis).sum(axis=axis)
    return pd.concat([kept, extra.rename(other).to_frame().T if axis == 0 else extra.rename(other)], axis=axis)


def crosstab_figure(table: pd.DataFrame, *, ami: float, label: str,
                    max_clusters: int = MAX_CLUSTERS, max_labels: int = MAX_LABELS) -> go.Figure:
    """Heatmap of a cluster × label cross-tab: colour = share of the cluster, text = count.

    Args:
        table: :func:`crystalrep.analysis.clusters.crosstab` (rows clusters, ``-1`` = noise).
        ami: Adjusted mutual information between clusters and labels (in the title).
        label: Name of the label column.
        max_clusters: Largest clusters drawn; the rest are summed into "other clusters".
        max_labels: Most common labels drawn; the rest are summed into "other".

    Returns:
        One heatmap: ``z`` = row-normalised shares, ``text`` = counts, ``y`` = cluster names.
    """
    import plotly.graph_objects as go

    table = table.rename(index=lambda c: "noise" if int(c) < 0 else f"cluster {c}")
    shown = _top(_top(table, 1, max_labels, "other"), 0, max_clusters, "other clusters")
    counts = shown.to_numpy(dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    title = f"Clusters × {label}: adjusted mutual information {ami:.2f}"
    hidden = []
    if table.shape[0] > max_clusters:
        hidden.append(f"{table.shape[0] - max_clusters} smaller clusters summed as 'other clusters'")
    if table.shape[1] > max_labels:
        hidden.append(f"{table.shape[1] - max_labels} rarer labels summed as 'other'")
    if hidden:
        title += f"<br><sup>{'; '.join(hidden)}</sup>"
    fig = go.Figure(go.Heatmap(
        z=shares, x=[str(c) for c in shown.columns], y=list(shown.index), text=counts.astype(int),
        texttemplate="%{text}", textfont={"size": 12}, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": "share of<br>cluster"},
        hovertemplate="%{y}<br>" + label + " %{x}<br>%{text} crystals (%{z:.0%} of the cluster)<extra></extra>"))
    fig.update_layout(margin=MARGIN)
    place_title(fig, title, height=max(360, 110 + 26 * len(shown)))
    fig.update_xaxes(title_text=label, type="category", tickangle=-45)
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def outlier_table(dataset: Dataset, novelty: Novelty, labels: np.ndarray | None = None) -> pd.DataFrame:
    """The flagged crystals, most novel first: id, formula, space group, score (and cluster)."""
    rows = np.flatnonzero(novelty.flagged)
    rows = rows[np.argsort(-novelty.scores[rows], kind="stable")]
    table = dataset.table.iloc[rows][["id", "formula", "spacegroup"]].rename(columns={"spacegroup": "space group"})
    table = table.assign(score=novelty.scores[rows])
    if labels is not None:
        table["cluster"] = ["noise" if c < 0 else str(c) for c in np.asarray(labels)[rows]]
    return table.reset_index(drop=True)
