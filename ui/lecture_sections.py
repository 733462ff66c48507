"""What each Lecture section draws once its Run button has been pressed (numbers from :mod:`ui.lecture`).

Every sentence that states a result is built from the computed numbers, so it says what the
data show — including when they do not show the effect the lecture expects.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crystalrep.datasets import Dataset
from crystalrep.plots import data as plots
from crystalrep.plots import lecture as plots_lecture
from ui import lecture as lc
from ui import lecture_verdicts as verdicts
from ui.cache import DatasetRef

MIN_CONTRAST = 20  # crystals needed for section 2 (5 grouped folds and a t-SNE worth looking at)
PERCENT = st.column_config.NumberColumn(format="%.0f%%")


def _warn(failed: dict[str, str]) -> None:
    for reason in failed.values():
        st.warning(reason)


def invariance(ref: DatasetRef, names: list[str]) -> None:
    """Section 1: the invariance table and what it says."""
    if not names:
        st.info("Choose encoders in the sidebar.")
        return
    results, errors = lc.invariance_all(ref, names)
    for error in errors:
        st.warning(error)
    if results:
        st.dataframe(plots_lecture.invariance_styler(results), hide_index=True, width="stretch")
        n = next(iter(results.values()))["n"]
        st.caption(f"Each cell: max / median relative change over {plots.plural(n, 'random crystal')} of this "
                   "dataset (seed 0); green below the 10⁻⁴ tolerance, red above; thermal noise is expected to be "
                   "non-zero.")
        st.markdown(verdicts.invariance_verdict(results))


def contrast(ref: DatasetRef, ds: Dataset, names: list[str]) -> None:
    """Section 2: t-SNE of the cell-size control beside the best encoder, with probe R² and map scores."""
    numeric = ds.property_names("numeric")
    if len(ds) < MIN_CONTRAST or not numeric:
        st.info(f"This demonstration needs at least {MIN_CONTRAST} crystals and a numeric property; "
                f"'{ds.name}' has {plots.plural(len(ds), 'crystal')} and {len(numeric)} numeric properties.")
        return
    embs, failed = lc.embedded(ref, names)
    _warn(failed)
    if not embs:
        st.info("None of the sidebar's encoders can embed this dataset; choose another one.")
        return
    try:
        grid = lc.probe_grid(ref, [lc.GEOMETRY, *embs])
        default = lc.pick(grid)[0]
    except ValueError as exc:
        st.info(f"The probes cannot run on this dataset: {lc.sentence(exc)}")
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
        st.info(lc.sentence(exc))
        return
    shown = (lc.GEOMETRY, good)
    with st.spinner(f"t-SNE of both embeddings ({len(ds):,} crystals; about 15 s each the first time)…"):
        fig = lc.map_figure(ref, list(shown), prop, [f"{lc.GEOMETRY} (2 numbers per crystal)", good])
        reports = [lc.tsne_map(ref, n)[1] for n in shown]
    st.plotly_chart(fig, key="lecture.maps")
    st.caption("openTSNE with default parameters, seed 0. Colour: linear scale clipped to the 2nd–98th "
               "percentiles; grey = no value.")
    scores = [lc.r2(grid, n, prop) for n in shown]
    for col, name, (mean, std), rep in zip(st.columns(2), shown, scores, reports, strict=True):
        a, b, c = col.columns([2, 1.3, 1.3])
        a.metric(f"Probe R² · {name}", f"{mean:.2f} ± {std:.2f}" if mean == mean else "–")
        b.metric("Map separation", "–" if rep["separation"] is None else f"{rep['separation']:.2f}",
                 help=f"Silhouette of the map by its own {rep['islands']} HDBSCAN islands: how clean it looks.")
        c.metric("Trustworthiness", f"{rep['trustworthiness']:.2f}", help="1 = no false neighbours in the map.")
    st.markdown(verdicts.contrast_verdict(prop, good, scores[0][0], scores[1][0], *reports))
    with st.expander("What each embedding's probe recovers, property by property (R²)"):
        st.dataframe(grid.pivot(index="property", columns="embedding", values="r2_mean").round(3), width="stretch")


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
    embs, failed = lc.embedded(ref, ["cgcnn-random", *pre, "magpie", "chgnet"])
    _warn(failed)
    if not embs:
        return
    prop = lc.probe_property(numeric)
    try:
        grid = lc.probe_grid(ref, list(embs), [prop])
    except ValueError as exc:
        st.info(f"The probes cannot run on this dataset: {lc.sentence(exc)}")
        return
    st.plotly_chart(plots_lecture.r2_bars(grid, title=plots.axis_label(ds.properties[prop])), key="lecture.r2")
    st.caption("Mean ± std over 5 folds grouped by chemical system. Change the property in the sidebar.")
    st.markdown(verdicts.pretraining_verdict(grid, pre))


def analogies(ref: DatasetRef, ds: Dataset, names: list[str]) -> None:
    """Section 4: analogy residuals and ranks per encoder, the family's summary, and an interpolation."""
    embs, failed = lc.embedded(ref, names)
    _warn(failed)
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
        st.caption(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in this dataset's {family} "
                   f"family, so the lecture's example is replaced by squares that are.")
    choices = lc.analogy_choices(ref, family)
    if st.session_state.get(lc.ANALOGY) not in range(len(choices)):
        st.session_state[lc.ANALOGY] = 0
    pos = st.selectbox("Analogy (a − b + c ≈ d?)", range(len(choices)), key=lc.ANALOGY,
                       format_func=lambda i: lc.analogy_label(ref, choices[i]))
    quad = choices[pos]
    one, summary, walk = lc.analogy_rows(ref, list(embs), family, quad)
    st.dataframe(one, hide_index=True, width="stretch",
                 column_config={"residual": st.column_config.NumberColumn(format="%.3f"),
                                "residual of answering a or c": st.column_config.NumberColumn(format="%.3f")})
    st.markdown(f"**All {families[family]:,} {family} analogies**")
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={"answer ranked 1st": PERCENT, "answer in top 5": PERCENT,
                                "beats answering a or c": PERCENT,
                                "median residual": st.column_config.NumberColumn(format="%.3f")})
    st.markdown(verdicts.analogy_verdict(summary))
    a, b, c, d = (lc.formula(ref, r) for r in quad)
    st.markdown(f"**Interpolation {b} → {d}** — the straight line between their embeddings (the square's diagonal), "
                f"nearest crystal at each of {len(walk)} steps (distance in parentheses). In an exactly linear space "
                f"its midpoint is also the midpoint of {a} and {c}.")
    st.dataframe(pd.DataFrame(walk), hide_index=True, width="stretch")
