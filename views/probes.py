"""Probes: how well a linear model reads the chosen property off each encoder's embedding."""

import pandas as pd
import streamlit as st

from crystalrep.lecture import verdicts
from crystalrep.plots import probes as plots_probes
from crystalrep.plots.probes import SPLIT_NAMES
from ui import background_task, probes, state, usable_embeddings

CARD_PX = 250  # one probe card: "0.81 ± 0.03" at the metric's 36 px fits

st.title("Probes")
ref, ds = state.require_dataset()
prop = state.current_property()
if prop is None:
    st.info("This dataset has no property columns, so there is nothing to probe.")
    st.stop()
info = ds.properties[prop]
if info.kind != "numeric":
    numeric = ds.property_names("numeric")
    hint = f", for example {numeric[0]}" if numeric else " (this dataset has none)"
    st.info(f"“{prop}” is categorical and a ridge probe predicts numbers: please choose a numeric property "
            f"in the sidebar{hint}.")
    st.stop()
st.caption("Ridge regression on standardised embeddings, penalty chosen by inner cross-validation; scores are "
           "mean ± std over the outer folds (seed 0), and every encoder is scored on the same folds.")

split = st.segmented_control("Split", list(SPLIT_NAMES), format_func=SPLIT_NAMES.get, key=probes.SPLIT,
                             default="random", required=True, wrap=True,
                             help="grouped: no chemical system is in both train and test; leave one element out: "
                                  "test on every crystal containing the element, train on the rest.")
y = probes.target(ref, prop)
element = None
if split == "element":
    counts = dict(verdicts.holdout_elements(ds.table, y))
    if not counts:
        st.info("No element can be held out: each must leave at least two labelled crystals on both sides.")
        st.stop()
    element = st.selectbox("Held-out element", list(counts), key=probes.ELEMENT, width=320,
                           format_func=lambda e: f"{e} ({counts[e]:,} crystals)")
compare = st.checkbox("Compare splits", key=probes.COMPARE, help="R² under the random and grouped splits side by side.")
problem = verdicts.probe_problem(ds.table, y, split=split, element=element)
if problem:
    st.info(problem)
    st.stop()

names = list(usable_embeddings.require(ref, state.current_encoders(), where="probes"))
big = len(ds) > probes.BACKGROUND_ABOVE  # then probes run as `crystalrep probe` in the background, into the store


def _run_in_background(on: str, on_element: str | None, *, curve: bool) -> None:
    task, argv = probes.task(ref, prop, names, on, on_element, curve=curve)
    background_task.panel(
        task, argv, what=f"Probing {prop} ({SPLIT_NAMES[on]} split) with {len(names)} encoder(s) on {len(ds):,} crystals",
        button=f"Probe {len(ds):,} crystals in the background",
        note=("At this size the ridge probes" + (" and their learning curve" if curve else "") + " take minutes, so "
              "they run in the background as `crystalrep probe`; the scores are then stored for every visitor."))


if big and not probes.ready(ref, prop, names, split, element, curve=True):
    _run_in_background(split, element, curve=True)
    st.stop()
rows = probes.comparison(ref, prop, names, split, element)

st.subheader(f"{prop} · {SPLIT_NAMES[split]}" + (f" ({element})" if element else ""))
cards = st.container(horizontal=True, wrap=True)  # as many per row as fit, so no number is cut short
for row in rows.to_dict("records"):
    texts = plots_probes.card_texts(row, info.unit)
    verdict = probes.badge(ref, row["encoder"], row["r2_mean"])
    with cards.container(border=True, width=CARD_PX):
        st.markdown(f"**{row['encoder']}**")
        with st.container(horizontal=True, wrap=True):
            st.metric("R²", texts["r2"], width="content")
            st.metric(texts["mae_label"], texts["mae"], width="content")
        st.caption(texts["caption"])
        if verdict is not None:
            st.caption(verdict.caption, help=verdict.help)
            if verdict.flagged:
                st.badge("pretty map, dead probe", icon=":material/warning:", color="orange", help=verdict.help)

if compare:
    frames, notes, pending = [rows], [], []
    for other in ("random", "grouped"):
        if other == split:
            continue
        reason = verdicts.probe_problem(ds.table, y, split=other)
        if reason:
            notes.append(f"{other}: {reason}")
        elif big and not probes.ready(ref, prop, names, other, None, curve=False):
            pending.append(other)
        else:
            frames.append(probes.comparison(ref, prop, names, other, None))
    st.dataframe(plots_probes.split_table(pd.concat(frames, ignore_index=True)), hide_index=True)
    for note in notes:
        st.caption(note)
    for other in pending:
        _run_in_background(other, None, curve=False)

st.subheader("Learning curve")
curve, available = probes.curves(ref, prop, names, split, element)
if curve.empty:
    st.info(f"The learning curve starts at {probes.SIZES[0]} training labels; this split leaves at most "
            f"{available:,} per fold.")
else:
    title = f"{prop}: test R² against training labels ({SPLIT_NAMES[split]})"
    st.plotly_chart(plots_probes.learning_curve_figure(curve, title=title), key="probes.curve")
    skipped = [n for n in probes.SIZES if n > available]
    st.caption("The same test folds at every N; the N training rows are a nested subsample of each training fold."
               + (f" N = {', '.join(map(str, skipped))} left out: this split leaves {available:,} training labels "
                  "per fold." if skipped else ""))
