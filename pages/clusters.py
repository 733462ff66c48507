"""Clusters: groups and outliers in one encoder's embedding, compared with crystallographic labels."""

import math

import streamlit as st

from crystalrep.plots import clusters as plots_clusters
from crystalrep.plots import data as plots
from ui import clusters, embeddings, state, usable_embeddings

st.title("Clusters")
ref, ds = state.require_dataset()
if len(ds) < clusters.MIN_CRYSTALS:
    st.info(f"This dataset has {plots.plural(len(ds), 'crystal')}; clustering needs at least "
            f"{clusters.MIN_CRYSTALS} before groups and outliers mean anything.")
    st.stop()
names = state.current_encoders()
if not names:
    st.info("Choose at least one encoder in the sidebar.")
    st.stop()
labels = plots_clusters.label_columns(ds)

c1, c2, c3, c4 = st.columns([1, 1, 2, 1], vertical_alignment="bottom")
name = c1.selectbox("Encoder", names, key=clusters.ENCODER)
method = c2.segmented_control("Method", list(clusters.METHODS), format_func=clusters.METHODS.get, default="hdbscan",
                              required=True, key=clusters.METHOD)
if method == "hdbscan":
    size = c3.slider("min_cluster_size", 2, min(200, len(ds) // 2), min(15, len(ds) // 2), key=clusters.MIN_SIZE,
                     help="The smallest group HDBSCAN calls a cluster; smaller groups become noise.")
    k_range = (0, 0)
else:
    top = min(30, len(ds) - 1)
    k_range = c3.slider("k range (the k with the best silhouette is used)", 2, top, (2, min(12, top)), key=clusters.K_RANGE)
    size = 0
label = c4.selectbox("Compare with", labels, key=clusters.LABEL) if labels else None

usable_embeddings.require(ref, [name], where="clusters")
key = embeddings.key(ref, name)
res = clusters.result(ref, name, key, method, size, k_range)
cols = st.columns(4)
cols[0].metric("Clusters", res.n_clusters)
cols[1].metric("Noise", f"{res.noise_fraction:.1%}", help="Crystals HDBSCAN assigns to no cluster (k-means has none).")
cols[2].metric("Silhouette", "—" if math.isnan(res.silhouette) else f"{res.silhouette:.2f}",
               help="Euclidean, in the full embedding, noise left out; on a fixed subsample of at most 2,000 crystals.")
cols[3].metric("k" if method == "kmeans" else "min_cluster_size", res.params["k"] if method == "kmeans" else size)
if res.n_clusters == 0:
    st.info(f"HDBSCAN calls every crystal noise at min_cluster_size {size}; the curve below shows the sizes at "
            "which clusters appear.")
st.caption(f"Clusters of the {name} embedding as stored (all {res.labels.size:,} crystals, every dimension; not a 2-D "
           "map), the same computation as `crystalrep cluster`.")

left, right = st.columns(2, gap="medium")
with left:
    if method == "hdbscan":
        curve = clusters.sweep(ref, name, len(ds))
        st.plotly_chart(plots_clusters.cluster_count_figure(curve, chosen=size, n_clusters=res.n_clusters,
                                                            noise=res.noise_fraction), key="clusters.sweep")
        st.caption("HDBSCAN has cliffs: the cluster count can jump between neighbouring sizes, so read the curve, "
                   "not one number. The diamond marks the size in use.")
    else:
        st.plotly_chart(plots_clusters.silhouette_k_figure(res.scores, chosen=res.params["k"]), key="clusters.k")
with right:
    if label is None:
        st.info("This dataset has no categorical column with two or more classes to compare the clusters with.")
    else:
        table, ami = clusters.agreement(ref, res.labels, label)
        st.plotly_chart(plots_clusters.crosstab_figure(table, ami=ami, label=label), key="clusters.crosstab")

st.subheader("Outliers")
novel = clusters.novelty(ref, name, key)
flagged = int(novel.flagged.sum())
st.caption(f"Novelty score: {novel.metric} distance to the k-th nearest neighbour (k = {novel.k}) in the embedding. The top "
           f"{clusters.NOVELTY_TOP:.0%} ({plots.plural(flagged, 'crystal')}, score ≥ {novel.threshold:.3g}) are listed.")
st.dataframe(plots_clusters.outlier_table(ds, novel, res.labels), hide_index=True, width="stretch",
             column_config={"score": st.column_config.NumberColumn(format="%.3g")})
