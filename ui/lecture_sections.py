"""What each Lecture section draws.

Every sentence that states a result is built from the computed numbers
(:mod:`crystalrep.lecture.sentences`), so it says what the data show — including when they do not
show the effect the lecture expects. Tables and figures go through :mod:`ui.lecture_presenter`
(wrapping HTML and projector-sized fonts in presenter mode); its switch and section picker are
re-exported here for the page.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from crystalrep.datasets import Dataset
from crystalrep.lecture import sentences
from crystalrep.plots import data as plots
from crystalrep.plots import lecture as plots_lecture
from crystalrep.plots.probes import pm
from ui import lecture as lc
from ui import usable_embeddings
from ui.cache import DatasetRef
from ui.lecture_presenter import (
    PERCENT,
    THREE,
    chart,
    presenter_toggle,
    section_picker,
    table,
    warn,
)
from ui.messages import sentence

__all__ = ["MIN_CONTRAST", "PERCENT", "THREE", "analogies", "contrast", "invariance", "presenter_toggle",
           "pretraining", "section_picker", "study"]

MIN_CONTRAST = 20  # crystals needed for section 2 (5 grouped folds and a t-SNE worth looking at)


def invariance(ref: DatasetRef, names: list[str]) -> None:
    """Section 1: the invariance table and what it says."""
    if not names:
        st.info("Choose encoders in the sidebar.")
        return
    results, errors = lc.invariance_all(ref, names)
    for error in errors:
        st.warning(error)
    if results:
        table(plots_lecture.invariance_styler(results), html=True)  # six columns: wrap, never scroll one away
        n = next(iter(results.values()))["n"]
        st.caption(f"Each cell: max / median relative change over {plots.plural(n, 'random crystal')} of this "
                   "dataset (seed 0); green below the 10⁻⁴ tolerance, red above; thermal noise is expected to be "
                   "non-zero.")
        st.markdown(sentences.invariance_verdict(results))


def _cards(shown: tuple[str, str], scores: list[tuple[float, float]], reports: list[dict[str, Any]],
           folds: int) -> None:
    """Per embedding: its name, then probe R², map separation and trustworthiness (wrapping, never cut)."""
    for col, name, (mean, std), rep in zip(st.columns(2), shown, scores, reports, strict=True):
        with col.container(border=True):
            st.markdown(f"**{name}**")
            with st.container(horizontal=True):
                st.metric("Probe R²", pm(mean, std, folds=folds), width="content")
                st.metric("Map separation", "–" if rep["separation"] is None else f"{rep['separation']:.2f}",
                          width="content",
                          help=f"Silhouette of the map by its own {rep['islands']} HDBSCAN islands: how clean it looks.")
                st.metric("Trustworthiness", f"{rep['trustworthiness']:.2f}", width="content",
                          help="1 = no false neighbours in the map.")


def contrast(ref: DatasetRef, ds: Dataset, names: list[str]) -> None:
    """Section 2: t-SNE of the cell-size control beside the best encoder, with probe R² and map scores."""
    numeric = ds.property_names("numeric")
    if len(ds) < MIN_CONTRAST or not numeric:
        st.info(f"This demonstration needs at least {MIN_CONTRAST} crystals and a numeric property; "
                f"'{ds.name}' has {plots.plural(len(ds), 'crystal')} and {len(numeric)} numeric properties.")
        return
    embs, failed = usable_embeddings.available(ref, names)
    warn(failed)
    if not embs:
        st.info("None of the sidebar's encoders can embed this dataset; choose another one.")
        return
    try:
        grid = lc.probe_grid(ref, [lc.GEOMETRY, *embs])
        default = lc.pick(grid)[0]
    except ValueError as exc:
        st.info(f"The probes cannot run on this dataset: {sentence(exc)}")
        return
    if st.session_state.get("lecture.prop") not in numeric:
        st.session_state["lecture.prop"] = default
    prop = st.selectbox("Property to colour by and probe", numeric, key="lecture.prop",
                        format_func=lambda p: plots.axis_label(ds.properties[p]),
                        help="Chosen at first as the property where the cell-size probe is nearest 0 and another "
                             "encoder's probe rises highest above it.")
    try:
        good = lc.pick(grid, prop)[1]
    except ValueError as exc:
        st.info(sentence(exc))
        return
    shown = (lc.GEOMETRY, good)
    with st.spinner(f"t-SNE of both embeddings ({len(ds):,} crystals; about 15 s each the first time)…"):
        fig = lc.map_figure(ref, list(shown), prop, [f"{lc.GEOMETRY} (2 numbers per crystal)", good])
        reports = [lc.tsne_map(ref, n)[1] for n in shown]
    chart(fig, "lecture.maps")
    st.caption("openTSNE with default parameters, seed 0. Colour: linear scale clipped to the 2nd–98th "
               "percentiles; grey = no value.")
    scores = [lc.r2(grid, n, prop) for n in shown]
    _cards(shown, scores, reports, folds=5)
    st.markdown(sentences.contrast_verdict(prop, good, scores[0][0], scores[1][0], *reports))
    with st.expander("What each embedding's probe recovers, property by property (R²)"):
        wide = grid.pivot(index="property", columns="embedding", values="r2_mean").round(3).reset_index()
        table(wide, formats={c: "{:.3f}" for c in wide.columns if c != "property"})


def pretraining(ref: DatasetRef, ds: Dataset, names: list[str]) -> None:
    """Section 3: probe R² of cgcnn-random, pretrained checkpoints, Magpie and CHGNet on the same folds."""
    pre = lc.pretrained(names)
    if not pre:
        st.info("No pretrained checkpoint yet. Start one on the Pretraining page (or run `crystalrep pretrain "
                f"--dataset {ds.name} --task contrastive --background`); it then appears here as `cgcnn@<job>`. "
                "Meanwhile, cgcnn-random against Magpie and CHGNet:")
    numeric = ds.property_names("numeric")
    if not numeric:
        st.info("This dataset has no numeric property to probe.")
        return
    embs, failed = usable_embeddings.available(ref, ["cgcnn-random", *pre, "magpie", "chgnet"])
    warn(failed)
    if not embs:
        return
    prop = lc.probe_property(numeric)
    try:
        grid = lc.probe_grid(ref, list(embs), [prop])
    except ValueError as exc:
        st.info(f"The probes cannot run on this dataset: {sentence(exc)}")
        return
    chart(plots_lecture.r2_bars(grid, title=plots.axis_label(ds.properties[prop])), "lecture.r2")
    st.caption("Mean ± std over 5 folds grouped by chemical system."
               + ("" if lc.presenting() else " Change the property in the sidebar."))
    st.markdown(sentences.pretraining_verdict(grid, pre))


def analogies(ref: DatasetRef, ds: Dataset, names: list[str]) -> None:
    """Section 4: analogy residuals and ranks per encoder, the family's summary, and an interpolation."""
    embs, failed = usable_embeddings.available(ref, names)
    warn(failed)
    quads = lc.analogies(ref)
    if not embs or quads.empty:
        st.info("No analogy square here: it needs four crystals of one structure type whose sites differ in two "
                "substitutions (e.g. CaTiO3, CaMoO3, SrMoO3, SrTiO3)." if quads.empty else
                "None of the sidebar's encoders can embed this dataset.")
        return
    families = quads["family"].value_counts()
    if st.session_state.get(lc.FAMILY) not in families.index:
        st.session_state[lc.FAMILY] = "perovskite" if "perovskite" in families.index else families.index[0]
    family = st.selectbox("Structure family", list(families.index), key=lc.FAMILY,
                          format_func=lambda f: f"{f} ({families[f]:,} analogies)",
                          on_change=lambda: st.session_state.pop(lc.ANALOGY, None))
    missing = lc.lecture_example(ref, family)
    if missing:
        listed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        st.caption(f"{listed} {'is' if len(missing) == 1 else 'are'} not in this dataset's {family} "
                   f"family, so the lecture's example is replaced by squares that are.")
    choices = lc.analogy_choices(ref, family)
    if st.session_state.get(lc.ANALOGY) not in range(len(choices)):
        st.session_state[lc.ANALOGY] = 0
    formulas = lc.formulas(ref)
    from crystalrep.lecture.examples import analogy_label

    pos = st.selectbox("Analogy (a − b + c ≈ d?)", range(len(choices)), key=lc.ANALOGY,
                       format_func=lambda i: analogy_label(formulas, choices[i]))
    quad = choices[pos]
    tables = lc.analogy_tables(ref, list(embs), family, quad)
    table(tables.one, formats={"residual": "{:.3f}", "residual of answering a or c": "{:.3f}"},
           config={"residual": THREE, "residual of answering a or c": THREE})
    st.markdown(f"**All {families[family]:,} {family} analogies**")
    table(tables.summary, formats={"answer ranked 1st": "{:.0f}%", "answer in top 5": "{:.0f}%",
                                    "beats answering a or c": "{:.0f}%", "median residual": "{:.3f}",
                                    "median rank": "{:.0f}"},
           config={"answer ranked 1st": PERCENT, "answer in top 5": PERCENT, "beats answering a or c": PERCENT,
                   "median residual": THREE})
    st.markdown(sentences.analogy_verdict(tables.summary))
    a, b, c, d = (formulas[r] for r in quad)
    st.markdown(f"**Interpolation {b} → {d}** — the straight line between their embeddings (the square's diagonal), "
                f"nearest crystal at each of {len(tables.walk)} steps (distance in parentheses). In an exactly linear "
                f"space its midpoint is also the midpoint of {a} and {c}.")
    table(tables.walk)


def _study_facts(report: dict[str, Any]) -> str:
    """The command, the budget planned against taken, and the corpus, as one paragraph."""
    plan, budget, corpus = report["plan"], report["budget"], report["corpus"]
    took = budget["actual_minutes"]
    return (f"**Command:** `{report['command']}` (run {report['created']}).  \n"
            f"**Compute budget:** {plan['budget_minutes']:g} min on {report['machine']['cpus']} CPU cores; planned "
            f"{budget['estimate'].get('total_minutes', float('nan')):.1f} min, took {took['total']:.1f} min "
            f"(pretraining {took['pretrain']:.1f}, evaluation {took['evaluate']:.1f}, corpus and imports "
            f"{took['prepare']:.1f}); {plan['epochs']} pretraining epoch(s) per job.  \n"
            f"**Corpus:** {corpus['n']:,} unlabelled crystals (`{corpus['dataset']}`), deduplicated across sources, "
            f"every evaluation crystal removed" + (f"; at most {plan['corpus_cap']:,} per pretraining job."
                                                   if plan.get("corpus_cap") else "."))


def study() -> None:
    """Section 5: the CDSSL pretraining study's report — verdict count, command, budget, corpus, results."""
    report = lc.study_report()
    if report is None:
        st.info(f"No pretraining study has been run here yet. Run `{lc.STUDY_COMMAND}` (about two hours on 2 CPU "
                "cores, in the background) and its report appears in this section.")
        return
    counts = report["verdict"]["counts"]
    if report.get("smoke"):
        st.warning("This is a smoke run (a few hundred crystals, one seed, one epoch): it checks the pipeline, its "
                   f"numbers are not a result. Run `{lc.STUDY_COMMAND}` for the study.")
    with st.container(horizontal=True):
        st.metric("SSL better than random init", f"{counts['better']} of {counts['total']}", width="content",
                  help="Settings where mean MAE(random) − mean MAE(SSL) exceeds the larger std over seeds × folds.")
        st.metric("SSL worse", f"{counts['worse']} of {counts['total']}", width="content")
        st.metric("Within the spread", f"{counts['within']} of {counts['total']}", width="content")
    st.markdown(f"SSL pretraining beats random initialisation beyond the spread in **{counts['better']} of "
                f"{counts['total']}** settings, is worse beyond it in {counts['worse']}, and is within the spread in "
                f"{counts['within']} (New et al. 2024 counted 37 of 49 with a MEGNet backbone).")
    st.caption(f"Rule: {report['verdict']['rule']}.")
    st.markdown(_study_facts(report))
    props = [p["label"] for p in report["evaluation_sets"]]
    units = {p["label"]: p["unit"] for p in report["evaluation_sets"]}
    if st.session_state.get(lc.STUDY_PROPERTY) not in props:
        st.session_state[lc.STUDY_PROPERTY] = props[0]
    prop = st.selectbox("Property", props, key=lc.STUDY_PROPERTY) if len(props) > 1 else props[0]
    inits = ["random", *report["plan"]["tasks"]]
    chart(plots_lecture.study_figure(report["table"], prop, unit=units[prop]), "lecture.study")
    st.caption(f"Test MAE of {prop} ({units[prop]}), mean ± std over seeds × folds; solid lines: mean pooling, "
               "dashed: Set2Set readout.")
    table(plots_lecture.study_frame(report["table"], prop, inits))
    by_task = report["verdict"].get("by", {}).get("task", {})
    if by_task:
        frame = pd.DataFrame([{"task": task, **counts_} for task, counts_ in by_task.items()])
        st.markdown("**The count per pretext task** (settings where it beats, loses to or ties random init)")
        table(frame[["task", "better", "worse", "within", "total"]])
    with st.expander("The whole report (Markdown, as `crystalrep study show` prints it)"):
        st.markdown(report["markdown"])
