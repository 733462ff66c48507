"""Checklist: the lecture's five reproducibility items for the current view, from what the store holds."""

import streamlit as st

from crystalrep.checkpoint import CheckpointError
from ui import checklist as ck
from ui import state

st.title("Reproducibility checklist")
ref, ds = state.require_dataset()
names, prop = state.current_encoders(), state.current_property()
try:
    report = ck.report(ref, names, prop)
except (CheckpointError, ValueError) as exc:
    st.error(f"The chosen encoders cannot be identified: {exc}")
    st.stop()

st.caption(f"The five items a map or a score needs before anyone should believe it, for the current view: dataset "
           f"**{ds.name}**, encoders **{', '.join(names) or 'none'}**, property **{prop or 'none'}**. An item is "
           f"green only when the store (`{report.store}`) holds its evidence; otherwise it says how to get it.")
st.progress(report.passed / len(report.items), text=f"{report.passed} of {len(report.items)} items hold")

for item in report.items:
    with st.container(border=True):
        badge = ":green-badge[:material/check: evidence stored]" if item.ok else ":red-badge[:material/close: missing]"
        st.markdown(f"#### {item.number}. {item.title} {badge}")
        st.markdown(item.finding)
        if item.todo:
            st.info(item.todo, icon=":material/arrow_forward:")
        if item.evidence:
            with st.expander(f"Evidence ({len(item.evidence)} row{'s' if len(item.evidence) != 1 else ''})",
                             expanded=item.ok):
                st.dataframe(ck.frame(item.evidence), hide_index=True, width="stretch")

st.subheader("Figures' provenance")
if report.provenance:
    st.caption("Every recorded map of this dataset by the chosen encoders: how its coordinates were made "
               "(projection key, method, parameters, seed, library versions) and how it was coloured.")
    st.dataframe(ck.frame(report.provenance), hide_index=True, width="stretch")
else:
    st.info("No map of this dataset by the chosen encoders has been recorded yet; the Projections page records "
            "each map it draws.")

cols = st.columns(2)
cols[0].download_button("Download as Markdown", report.to_markdown(), file_name=f"checklist-{ds.name}.md",
                        mime="text/markdown", icon=":material/description:", key="checklist.md")
cols[1].download_button("Download as JSON", report.to_json(), file_name=f"checklist-{ds.name}.json",
                        mime="application/json", icon=":material/data_object:", key="checklist.json")
