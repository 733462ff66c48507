"""Projections page controls, every one bound to the URL: mode, encoder or method, seed, parameters, colour, points.

:func:`controls` draws them and returns the :class:`~ui.projections.View` the page draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from crystalrep.plots.projections import METHOD_NAMES
from crystalrep.plots.sampling import BUDGETS, POINT_BUDGET
from crystalrep.plots.style import colour_options, column_label
from ui import state, urlstate
from ui.projections import MIN_NONLINEAR, Panel, View

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset

MODES = ("compare methods", "compare encoders")
CLIPS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
MIN_DISTS = (0.0, 0.05, 0.1, 0.25, 0.5, 0.8, 0.99)
BUDGET_SHOWN = min(BUDGETS)  # datasets up to this size never need the points control


def _clamp(key: str, param: str, default: Any, lo: float, hi: float, codec: urlstate.Codec = urlstate.INT) -> Any:
    """Bind a slider to the URL, keeping a remembered value inside a range that shrank (a smaller dataset)."""
    if key in st.session_state:
        st.session_state[key] = min(max(st.session_state[key], lo), hi)
    return urlstate.bind(key, param, default, codec=codec, valid=lambda v: lo <= v <= hi)


def method_params(n: int) -> dict[str, tuple[tuple[str, Any], ...]]:
    """Draw the hyperparameter widgets; their values per method (ranges valid for ``n`` crystals)."""
    cols = st.columns(4)
    hi_nn, hi_perp = min(100, n - 1), min(100, (n - 1) // 3)
    _clamp("maps.n_neighbors", "nn", min(15, hi_nn), 2, hi_nn)
    _clamp("maps.perplexity", "perp", min(30, hi_perp), 2, hi_perp)
    urlstate.bind("maps.min_dist", "md", 0.1, codec=urlstate.FLOAT, valid=MIN_DISTS)
    _clamp("maps.size", "size", 5, 2, 12)
    nn = cols[0].slider("UMAP n_neighbors", 2, hi_nn, key="maps.n_neighbors",
                        help="Neighbours UMAP keeps: small values favour local detail, large ones global shape.")
    md = cols[1].select_slider("UMAP min_dist", MIN_DISTS, key="maps.min_dist",
                               help="How tightly UMAP packs points together.")
    perp = cols[2].slider("t-SNE perplexity", 2, hi_perp, key="maps.perplexity",
                          help=f"Effective neighbours of t-SNE; at most (n − 1)/3 = {hi_perp} here.")
    cols[3].slider("Point size", 2, 12, key="maps.size")
    std = st.session_state["maps.standardize"]  # drawn in the top row (controls), beside the seed
    return {"pca": (("standardize", bool(std)),), "umap": (("min_dist", md), ("n_neighbors", nn)),
            "tsne": (("perplexity", float(perp)),)}


def _colour_picker(ds: Dataset) -> tuple[str, bool, float]:
    options = colour_options(ds)
    sidebar = state.current_property() if state.current_property() in options else next(iter(options))
    if st.session_state.get("maps.colour_follows") != sidebar:  # the sidebar property is the default
        st.session_state["maps.colour"] = st.session_state["maps.colour_follows"] = sidebar
    urlstate.bind("maps.colour", "colour", sidebar, valid=list(options))
    urlstate.bind("maps.log", "log", False, codec=urlstate.BOOL)
    urlstate.bind("maps.clip", "clip", 0.0, codec=urlstate.FLOAT, valid=CLIPS)
    cols = st.columns([2, 1, 2])
    column = cols[0].selectbox("Colour by", list(options), key="maps.colour",
                               format_func=lambda c: column_label(ds, c), help="Defaults to the sidebar property.")
    categorical = options[column] == "categorical"
    log = cols[1].toggle("Log scale", key="maps.log", disabled=categorical)
    clip = cols[2].select_slider("Clip colour range at each end (%)", CLIPS, key="maps.clip",
                                 disabled=categorical, help="Percentiles clipped so outliers do not wash out the scale.")
    return column, log and not categorical, 0.0 if categorical else clip


def controls(ds: Dataset, encoders: list[str]) -> View:
    """Draw the page's controls and return the panels asked for (:meth:`View.live` picks those drawn)."""
    n = len(ds)
    methods = ["pca", "umap", "tsne"] if n >= MIN_NONLINEAR else ["pca"]
    top = st.columns([4, 4, 2, 3], vertical_alignment="bottom")
    urlstate.bind("maps.mode", "mode", MODES[0], valid=MODES)
    urlstate.bind("maps.seed", "seed", 0, codec=urlstate.INT, valid=lambda v: 0 <= v < 2**31)
    urlstate.bind("maps.standardize", "std", True, codec=urlstate.BOOL)
    mode = top[0].radio("Compare", MODES, horizontal=True, key="maps.mode")
    seed = int(top[2].number_input("Seed", 0, 2**31 - 1, key="maps.seed"))
    top[3].toggle("Standardise", key="maps.standardize",
                  help="PCA: scale every embedding dimension to unit variance first (default): otherwise the "
                       "dimensions with the largest numbers (Magpie's, in the thousands) are all PCA sees.")
    note = "" if n >= MIN_NONLINEAR else (f"UMAP and t-SNE need at least {MIN_NONLINEAR} crystals (this dataset has "
                                          f"{n}), so only PCA is offered.")
    if mode == MODES[0]:
        urlstate.bind("maps.encoder", "enc", encoders[0], valid=encoders)
        chosen = top[1].selectbox("Encoder", encoders, key="maps.encoder")
        pairs = [(chosen, m) for m in methods]
    else:
        urlstate.bind("maps.method", "method", methods[0], valid=methods)
        method = top[1].selectbox("Method", methods, format_func=METHOD_NAMES.get, key="maps.method")
        pairs = [(e, method) for e in encoders]
    params = method_params(n)
    column, log, clip = _colour_picker(ds)
    panels = [Panel(e, m, params[m], seed) for e, m in pairs]
    return View(panels, column, log, clip, float(st.session_state["maps.size"]), note, _budget(n))


def _budget(n: int) -> int:
    """The figure's point budget (``pts`` in the URL); offered only when a dataset can exceed the smallest."""
    budget = urlstate.bind("maps.points", "pts", POINT_BUDGET, codec=urlstate.INT, valid=BUDGETS)
    if n > BUDGET_SHOWN:
        st.select_slider("Points drawn per figure", BUDGETS, key="maps.points", format_func=lambda v: f"{v:,}",
                         help="The most points one figure sends to the browser (all maps and rings together). Above "
                              "it every map draws the same seeded sample (stratified by colour, highlighted crystals "
                              "always in), over a shaded image of all crystals.")
    return int(budget)


