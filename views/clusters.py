"""Clusters: groups and outliers in one encoder's embedding, on a map, compared with crystallographic labels."""

import math

import streamlit as st

from crystalrep.plots import clusters as plots_clusters
from crystalrep.plots import data as plots
from ui import background_task, clusters, downloads, embeddings, explore, state, usable_embeddings
from ui import projections as maps

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

choice = clusters.controls(ds, names, plots_clusters.label_columns(ds))
usable_embeddings.require(ref, [choice.encoder], where="clusters")
key = embeddings.key(ref, choice.encoder)
if len(ds) > clusters.BACKGROUND_ABOVE and not clusters.ready(ref, choice, len(ds)):
    task, argv = clusters.task(ref, choice, len(ds))
    background_task.panel(
        task, argv, what=f"Clustering {len(ds):,} crystals", button=f"Cluster {len(ds):,} crystals in the background",
        note=(f"At this size, {clusters.METHODS[choice.method]} "
              f"{clusters.space_words(choice.method, clusters.hdbscan_pca_dims(len(ds)))}"
              + (", its min_cluster_size sweep" if choice.method == "hdbscan" else "")
              + " and the distance of each crystal to its 10th neighbour (the outliers) take minutes, so they run "
              "in the background as `crystalrep cluster`; the result is then stored for every visitor."))
    st.stop()
res = clusters.of(ref, choice)
kmeans = choice.method == "kmeans"
cols = st.columns(4)
cols[0].metric("Clusters", res.n_clusters)
cols[1].metric("Noise", f"{res.noise_fraction:.1%}", help="Crystals HDBSCAN assigns to no cluster (k-means has none).")
cols[2].metric("Silhouette", "—" if math.isnan(res.silhouette) else f"{res.silhouette:.2f}",
               help="Euclidean, in the full embedding, noise left out; on a fixed subsample of at most 2,000 crystals.")
cols[3].metric("k" if kmeans else "min_cluster_size", res.params["k"] if kmeans else choice.min_cluster_size,
               help=("Chosen by the best silhouette in the range." if kmeans and choice.k is None
                     else "Set by you." if kmeans else None))
if res.n_clusters == 0:
    st.info(f"HDBSCAN calls every crystal noise at min_cluster_size {choice.min_cluster_size}; the curve below shows "
            "the sizes at which clusters appear.")
st.caption(f"Clusters of the {choice.encoder} embedding as stored (all {res.labels.size:,} crystals, found "
           f"{clusters.space_words(choice.method, res.params.get('pca_dims'))}; not a 2-D map), the same computation "
           "as `crystalrep cluster`.")

panel = maps.map_panel(ref, choice.encoder, key="clusters.map")
ex = explore.controls("clusters", ref, [choice.encoder])
highlight, neighbours = explore.highlight(ref, ex)
if maps.projection(ref, panel) is None:
    maps.pending(ref, panel)
else:
    fig = clusters.map_figure(ref, choice, panel, key, highlight)
    explore.chart(fig, key="clusters.chart", prefix="clusters", encoders=[choice.encoder])
    with st.columns([1, 3])[0]:
        downloads.figure_downloads(fig, name=f"{ds.name}-clusters", key="clusters.export")
explore.focus_panel(ref, ex, neighbours, [choice.encoder])
explore.selection_panel(ref, ex)

left, right = st.columns(2, gap="medium")
with left:
    if kmeans:
        st.plotly_chart(plots_clusters.silhouette_k_figure(res.scores, chosen=res.params["k"]), key="clusters.k_curve")
    else:
        curve = clusters.sweep(ref, choice.encoder, len(ds))
        st.plotly_chart(plots_clusters.cluster_count_figure(curve, chosen=choice.min_cluster_size,
                                                            n_clusters=res.n_clusters, noise=res.noise_fraction),
                        key="clusters.sweep")
        st.caption("HDBSCAN has cliffs: the cluster count can jump between neighbouring sizes, so read the curve, "
                   "not one number. The diamond marks the size in use.")
with right:
    if choice.label is None:
        st.info("This dataset has no categorical column with two or more classes to compare the clusters with.")
    else:
        table, ami = clusters.agreement(ref, res.labels, choice.label)
        st.plotly_chart(plots_clusters.crosstab_figure(table, ami=ami, label=plots.label_name(choice.label, ds)),
                        key="clusters.crosstab")

st.subheader("Outliers")
novel = clusters.novelty(ref, choice.encoder, key)
flagged = int(novel.flagged.sum())
st.caption(f"Novelty score: {novel.metric} distance to the k-th nearest neighbour (k = {novel.k}) in the embedding. The top "
           f"{clusters.NOVELTY_TOP:.0%} ({plots.plural(flagged, 'crystal')}, score ≥ {novel.threshold:.3g}) are listed.")
st.dataframe(plots_clusters.outlier_table(ds, novel, res.labels), hide_index=True, width="stretch",
             column_config={"score": st.column_config.NumberColumn(format="%.3g")})
