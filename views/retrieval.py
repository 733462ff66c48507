"""Retrieval: a dataset crystal or an uploaded file -> its nearest neighbours in one encoder's full embedding,
ringed on a map whose points are themselves queries."""

import streamlit as st

from crystalrep.plots import structures as plots_structures
from crystalrep.plots.projections import Highlight
from crystalrep.plots.style import colour_options
from ui import background_task, embeddings, explore, state
from ui import projections as maps
from ui import retrieval as rv

st.title("Retrieval")
ref, ds = state.require_dataset()
names = state.current_encoders()
if not names:
    st.info("Choose at least one encoder in the sidebar to search its embedding.")
    st.stop()
if len(ds) < 3:
    st.info(f"Retrieval needs at least 3 crystals; dataset '{ds.name}' has {len(ds)}.")
    st.stop()
st.caption(rv.caption())
name, k, metric, source = rv.controls(ref, names)
failed = rv.require(ref, [name], where="retrieval")[1]

table = query_row = upload = None
if failed:
    st.error(failed[name].removesuffix(".") + "; choose another encoder above.")
elif source == rv.FROM_DATASET:
    query_row = rv.pick_row(ref)
    table = rv.row_neighbours(ref, name, query_row, k, metric)
else:
    upload = st.file_uploader(f"Structure file — {rv.UPLOAD_HELP}", key=rv.UPLOAD)
    if upload is None:
        st.info("Upload a crystal to find its nearest neighbours in this dataset.")
    else:
        search = rv.upload_neighbours(ref, name, upload.name, upload.getvalue(), k, metric)
        if search.error:
            st.error(search.error)
        table = search.table

if not failed:
    query = rv.row_label(ref, query_row).split(" — ")[0] if upload is None else upload.name
    ex = explore.controls("retrieval", ref, [name], focus_key=rv.ROW, neighbours=False)
    rows = () if table is None else tuple(int(r) for r in table["row"])
    panel = maps.map_panel(ref, name, key=rv.MAP)
    if maps.projection(ref, panel) is None:
        maps.pending(ref, panel)
    else:
        prop = state.current_property()
        colour = prop if prop in colour_options(ds) else "crystal_system"
        fig = rv.map_figure(ref, panel, embeddings.key(ref, name), Highlight(query_row, rows, ex.selection, ex.search),
                            query, colour)
        explore.chart(fig, key="retrieval.chart", prefix="retrieval", encoders=[name], focus_key=rv.ROW,
                      on_focus=rv.to_dataset_query)

if table is not None:
    st.subheader(f"{len(table)} nearest to {query}")
    st.caption(f"{name} embedding, {metric} distance"
               + (", the query itself excluded. " if upload is None else "; distance ≈ 0: the encoder cannot tell that crystal from the query. ")
               + rv.search_sentence(table.attrs.get("search")))
    if identical := rv.identical_sentence(table.attrs.get("identical"), name, len(table)):
        st.caption(f":material/content_copy: {identical}")
    st.dataframe(plots_structures.neighbour_display(table), hide_index=True, width="stretch",
                 column_config={"distance": st.column_config.NumberColumn(format="%.4f")})
    spread = rv.spread(ref, rows, query_row)
    if len(spread):
        st.markdown("**Neighbour property spread**")
        st.caption("Standard deviation of each property among these neighbours against the whole dataset's: "
                   "a ratio well below 1 means the neighbours share the property.")
        st.dataframe(spread.drop(columns="query") if upload is not None else spread, hide_index=True, width="stretch")
    st.markdown("**Query and nearest neighbours in 3-D**")
    left, right = st.columns(2, gap="medium")
    with left:
        if upload is None:
            explore.structure_view(ref, query_row, "retrieval", title=f"Query: {ds.ids[query_row]}")
        else:
            st.plotly_chart(rv.upload_figure(upload.name, upload.getvalue(), images=True), key="retrieval.view.query")
    images = "face atoms" in st.session_state.get("retrieval.show", explore.SHOW)
    for col, hit in zip(right.columns(2) * 2, table.itertuples(), strict=False):
        with col:
            st.plotly_chart(rv.row_figure(ref, int(hit.row), images=images, title=f"#{hit.rank} {hit.id}",
                                          height=rv.SMALL_VIEW), key=f"retrieval.view.{hit.rank}")
            st.caption(f"{hit.formula} · distance {hit.distance:.4f}")
if not failed:
    explore.selection_panel(ref, ex)

st.subheader(f"Precision@{k} by label, every sidebar encoder")
prop = state.current_property()
numeric = prop if prop in ds.property_names("numeric") else None
st.caption(f"Share of each crystal's {k} nearest neighbours (itself excluded, {metric} distance) with its label, "
           + ("averaged over the dataset" if len(ds) <= rv.MAX_REPORT_QUERIES else
              f"averaged over {rv.MAX_REPORT_QUERIES:,} query crystals drawn at random (seed 0) from all {len(ds):,}, "
              "each searched against the whole dataset")
           + "; the last row is what random neighbours would score. "
           + (f"Spread ratio: the mean gap in {numeric} to the neighbours over that between random pairs "
              "(well below 1: neighbours share it)." if numeric else "Pick a numeric sidebar property for its spread ratio."))
usable, failed = rv.require(ref, names, where="retrieval.all")
if usable and len(ds) > rv.REPORT_BACKGROUND_ABOVE and not rv.report_ready(ref, usable, k, metric, numeric):
    task, argv = rv.report_task(ref, usable, k, metric, numeric)
    background_task.panel(task, argv, what=f"Scoring precision@{k} of {len(usable)} encoder(s) on {len(ds):,} crystals",
                          button="Score precision@k in the background",
                          note="At this size the searches behind this table take minutes, so they run in the background "
                               "as `crystalrep precision`; the table is then stored for every visitor.")
elif usable:
    precision, ratio = rv.comparison(ref, usable, k, metric, numeric)
    left, right = st.columns([5, 2]) if len(ratio.columns) else (st.container(), None)
    left.dataframe(precision, width="stretch", column_config={"_index": st.column_config.TextColumn("encoder")})
    if right is not None:
        right.dataframe(ratio, width="stretch", column_config={"_index": st.column_config.TextColumn("encoder")})
        if rv.SEARCH_RECALL in ratio.columns:
            right.caption(f"{rv.SEARCH_RECALL}: share of the exact 10 nearest neighbours the approximate index "
                          "returns, measured on held-out crystals.")
for reason in failed.values():
    st.caption(f":material/warning: {reason}")
