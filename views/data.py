"""Data: what the chosen dataset holds, and importing a new one from a file."""

import pandas as pd
import streamlit as st

from crystalrep.plots import data as plots
from ui import cache, embeddings, state
from ui.messages import sentence

PTABLE_FONT_PX = 12
UPLOAD_HELP = "CIF, POSCAR, extxyz, a CSV with a `cif` column, or a zip of CIF files."


def import_section(*, expanded: bool) -> None:
    """The import expander: file + name -> a new dataset, or one sentence saying why not."""
    outcome = st.session_state.get(state.IMPORT_RESULT)
    opened = expanded or st.session_state.get(state.IMPORT_USED, False)  # stays open once used
    with st.expander("Import a dataset", expanded=opened, icon=":material/upload_file:"):
        st.file_uploader(f"Structure file — {UPLOAD_HELP}", key=state.UPLOAD,
                         on_change=state.clear_import_result)
        st.text_input("Dataset name", key=state.IMPORT_NAME, placeholder="default: the file name",
                      help="Letters, digits, '_', '.', '-' (at most 64).")
        if st.button("Import", key="crystalrep.import.go", type="primary"):
            outcome = state.import_from_widgets()
        if outcome is None:
            return
        if outcome.error:
            st.error(outcome.error)
        else:
            st.success(f"Imported {plots.plural(outcome.n_structures, 'structure')} ({outcome.fmt}) as dataset "
                       f"'{outcome.name}'; it is now selected in the sidebar.")
        if outcome.rejected:
            st.warning(f"{plots.plural(len(outcome.rejected), 'row')} rejected:")
            st.dataframe(pd.DataFrame(outcome.rejected), hide_index=True, width="stretch")


ref = state.current_ref()
if ref is None:
    st.title("Data")
    st.info(state.NO_DATA)
    import_section(expanded=True)
    st.stop()

ds = cache.dataset(ref)
info = cache.summary(ref)
st.title(f"Dataset: {ds.name}")
if info.get("description"):
    st.markdown(info["description"])
cols = st.columns(4)
cols[0].metric("Structures", f"{info['n_structures']:,}")
cols[1].metric("Sites", f"{info['n_sites']:,}")
cols[2].metric("Elements", info["n_elements"])
cols[3].metric("Properties", len(ds.properties))
st.caption(f"**Source:** {info.get('source') or 'not recorded'} · **License:** {info.get('license') or 'not recorded'}"
           f" · **Fingerprint:** `{info['fingerprint'][:12]}`", help=f"sha256 over ids and structures: {info['fingerprint']}")

log = st.toggle("Log colour scale", key="data.ptable_log")
# The whole width, so each tile is wide enough for its symbol and count at 12 px (in a 3/5 column at
# 1024 px the tiles were 20 px wide and their numbers unreadable).
st.plotly_chart(cache.element_figure(ref, log=log, font_px=PTABLE_FONT_PX), key="data.ptable")
prop = state.current_property()
if prop is None:
    st.info("This dataset has no property columns to plot.")
else:
    left, right = st.columns([3, 2], gap="medium", vertical_alignment="center")
    left.plotly_chart(cache.histogram_figure(ref, prop), key="data.histogram")
    right.caption(plots.property_summary(ds, prop))

st.subheader("Structures")
query = st.text_input("Search", key="data.search", placeholder="id, formula or chemical system, e.g. TiO or O-Sr-Ti")
table = plots.display_table(ds, query=query)
st.caption(f"{len(table):,} of {len(ds):,} structures")
st.dataframe(table, hide_index=True, width="stretch", height=400 if len(table) > 10 else "auto")

st.subheader("Embeddings")
names = state.current_encoders()
rows = embeddings.status(ref, names)
if not names:
    st.info("Choose encoders in the sidebar to see or compute their embeddings of this dataset.")
else:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    todo = [r["encoder"] for r in rows if r["stored"] != "yes"]
    if todo and st.button(f"Compute {', '.join(todo)}", key="data.embed", type="primary",
                          help="Embeds every crystal with each missing encoder (cached in the store)."):
        try:
            embeddings.compute(ref, todo)
        except ValueError as exc:  # e.g. an element beyond an encoder's range; the others are stored
            st.error(sentence(exc))
        else:
            st.rerun()

import_section(expanded=False)
