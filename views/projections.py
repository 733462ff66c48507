"""Projections: PCA | UMAP | t-SNE maps side by side, linked to structures and neighbours, with the numbers
that say whether to believe them, exports, and a sweep."""

import streamlit as st

from crystalrep.jobs import background
from crystalrep.plots import map_captions as mc
from ui import downloads, embeddings, explore, map_controls, map_sweep, state, usable_embeddings
from ui import projections as maps

ref, ds = state.require_dataset()
st.title("Projections")
st.caption("2-D maps of an embedding. Each caption states how the map was made and two numbers: trustworthiness "
           "(are 2-D neighbours real neighbours? 1 = yes) and separation (silhouette of the map by the colour, when "
           "categorical: how separated classes *look*; a probe says whether the embedding knows them).")
if len(ds) < 3:
    st.info(f"A map needs at least 3 crystals; {ds.name} has {len(ds)}.")
    st.stop()
encoders = state.current_encoders()
if not encoders:
    st.info("Choose at least one encoder in the sidebar.")
    st.stop()

view = map_controls.controls(ds, encoders)
usable = usable_embeddings.require(ref, view.encoders, where="maps")
panels, note = view.live(usable)
if note:
    st.caption(note)
colour = maps.colouring(ref, view.colour, view.log, view.clip)
drawn = maps.ready(ref, panels)
ex = explore.controls("maps", ref, [e for e in view.encoders if e in usable])
highlight, neighbours = explore.highlight(ref, ex)
if drawn:
    shown = tuple(p for p, _ in drawn)
    fig = maps.figure(ref, shown, tuple(embeddings.key(ref, p.encoder) for p in shown), view, highlight)
    explore.chart(fig, key="maps.chart", prefix="maps", encoders=[p.encoder for p in shown])
    maps.captions(ref, drawn, view, colour)
    meta = fig.layout.meta
    st.caption(f"{colour.caption} " + (f"Every map draws the same {meta['points_drawn']:,} of {len(ds):,} crystals "
                                       "(a seeded sample stratified by colour, highlighted crystals included) over a "
                                       "shaded image of all of them; hover, click and box/lasso act on drawn points."
                                       if meta["sampled"] else f"All {len(ds):,} crystals are drawn in every map."))
    maps_xy = {f"{p.encoder} {mc.METHOD_NAMES[p.method]} seed {p.seed}": m.coords for p, m in drawn}
    cols = st.columns([2, 2, 2, 3])
    cols[0].download_button("Coordinates (CSV)", lambda: mc.coordinates_table(ds, maps_xy).to_csv(index=False).encode(),
                            file_name=f"{ds.name}-maps.csv", mime="text/csv", icon=":material/download:",
                            key="maps.download", on_click="ignore")
    with cols[1]:
        downloads.figure_downloads(fig, name=f"{ds.name}-maps", key="maps.export")
    with cols[2]:
        downloads.chemiscope_download(ref, key="maps.chemiscope")
explore.focus_panel(ref, ex, neighbours, [e for e in view.encoders if e in usable])
explore.selection_panel(ref, ex)

st.subheader("Sweep: seeds × parameter")
st.caption("Robust claims survive a sweep: the same embedding mapped with several seeds and parameter values, "
           "aligned to one frame. Under each panel: its trustworthiness and its column's seed stability (mean "
           "Procrustes disparity between seeds; 0 = identical shapes, lower is steadier).")
if len(ds) < maps.MIN_NONLINEAR:
    st.info(f"A UMAP/t-SNE sweep needs at least {maps.MIN_NONLINEAR} crystals; {ds.name} has {len(ds)}.")
    st.stop()
encoder, method, param, values, seeds = map_sweep.sweep_controls(ref, list(usable))
if not values:
    st.info(f"Pick at least one {param} value to sweep.")
    st.stop()
ekey = embeddings.key(ref, encoder)
specs = map_sweep.sweep_specs(method, param, values, seeds)
task = map_sweep.sweep_key(ekey, method, param, values, seeds)
if all(maps.stored(ekey, s) for s in specs):
    args = (ref, encoder, ekey, method, param, tuple(values), tuple(seeds))
    st.image(map_sweep.sweep_png(*args, view))
    result = map_sweep.sweep_result(*args)
    st.dataframe(result.table, hide_index=True, width="stretch", column_config=map_sweep.SWEEP_COLUMNS)
    st.caption(f"Trustworthiness and kNN overlap (mean ± std over {len(seeds)} seeds) on {result.sample_size:,} "
               f"crystals, k = {result.k}. {colour.caption}")
elif background.state(task).running:
    map_sweep.sweep_wait(task, ekey, specs)
else:
    if background.state(task).state == "failed":
        st.error(f"The last sweep failed: {background.state(task).message}")
    if st.button(f"Run sweep ({len(specs)} maps, in the background)", key="maps.sweep.run", type="primary"):
        background.start(map_sweep.sweep_argv(ref, encoder, method, param, values, seeds), key=task)
        st.rerun()
