"""Projections page glue: the controls (all in the URL), cached maps and scores, and UMAP/t-SNE runs in the background.

PCA is computed in the page (well under a second). UMAP and t-SNE run as ``crystalrep project``
in a detached process (:mod:`crystalrep.jobs.background`), whatever the dataset size: a fresh
process spends about a minute compiling UMAP's numba code, and even t-SNE on ~2,000 crystals
takes seconds that should not block the page. The page draws a map once the store holds it,
polling in a fragment meanwhile. Cached functions take keys (dataset ref, embedding key, spec),
never arrays. Every map the page draws is one figure with subplots (one WebGL context), so any
number of encoders can be compared side by side.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from crystalrep.analysis.projections import KIND, Projection, ProjectionSpec, cache_key, make_spec
from crystalrep.jobs import background
from crystalrep.plots.projections import METHOD_NAMES, Highlight
from crystalrep.plots.style import Colouring, colour_options, column_label
from crystalrep.store import Store, content_key
from ui import embeddings, state, urlstate
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.analysis.map_quality import MapScores
    from crystalrep.analysis.sweeps import SweepResult
    from crystalrep.datasets import Dataset

MODES = ("compare methods", "compare encoders")
MIN_NONLINEAR = 10  # fewer crystals than this: UMAP/t-SNE neighbourhoods say nothing
CLIPS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
MIN_DISTS = (0.0, 0.05, 0.1, 0.25, 0.5, 0.8, 0.99)
SWEEP_VALUES = {"umap": ("n_neighbors", (5, 10, 15, 30, 50, 100), (5, 15, 50)),
                "tsne": ("perplexity", (5, 10, 30, 50, 100), (5, 30, 100))}
_NUMBER = st.column_config.NumberColumn
SWEEP_COLUMNS = {
    "trustworthiness": _NUMBER("trustworthiness", format="%.3f", help="Mean over seeds; 1 = no false neighbours."),
    "trustworthiness_std": _NUMBER("± std", format="%.3f"),
    "stability": _NUMBER("stability", format="%.3f", help="Mean pairwise Procrustes disparity between seeds; lower "
                                                           "is steadier."),
    "knn_overlap": _NUMBER("kNN overlap", format="%.3f", help="Share of each crystal's k nearest neighbours (k below) kept "
                                                              "in 2-D."),
    "knn_overlap_std": _NUMBER("± std", format="%.3f"),
    "seconds": _NUMBER("seconds (sum)", format="%.1f"),
    "cached": _NUMBER("maps read from the store"),
}
NUMBERS = urlstate.Codec(lambda v: ",".join(map(str, v)), lambda t: [int(x) for x in t.split(",") if x])
COLD_HINT = {"umap": " The first UMAP in a fresh process spends about a minute compiling (numba); later ones "
                     "take seconds.", "tsne": ""}


@dataclass(frozen=True)
class Panel:
    """One map to draw: an encoder, a method, the user's parameters and a seed."""

    encoder: str
    method: str
    params: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def title(self) -> str:
        """``"magpie · UMAP"``."""
        return f"{self.encoder} · {METHOD_NAMES[self.method]}"

    def spec(self) -> ProjectionSpec:
        """The complete, validated request."""
        return make_spec(self.method, dict(self.params), self.seed)


@dataclass(frozen=True)
class View:
    """What the controls ask for: panels, colour and point size."""

    panels: list[Panel]
    colour: str
    log: bool
    clip: float
    point_size: float
    note: str = ""

    @property
    def encoders(self) -> list[str]:
        """Encoders of the panels, in order."""
        return list(dict.fromkeys(p.encoder for p in self.panels))

    def live(self, usable: Collection[str]) -> tuple[list[Panel], str]:
        """The panels whose encoder could embed the dataset (all drawn: one figure, one WebGL context)."""
        return [p for p in self.panels if p.encoder in usable], self.note


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
    return View(panels, column, log, clip, float(st.session_state["maps.size"]), note)


def stored(ekey: str, spec: ProjectionSpec) -> bool:
    """Whether the store holds this projection (an intact artifact)."""
    return Store().verified(KIND, cache_key(ekey, spec)) is not None


@st.cache_data(max_entries=64, show_spinner=False)
def _load(ref: DatasetRef, encoder: str, ekey: str, spec: ProjectionSpec) -> Projection:
    from crystalrep.analysis.projections import project_cached

    X = embeddings.cached(ref, encoder)[0]
    return project_cached(X, ekey, method=spec.method, params=dict(spec.params), seed=spec.seed)


def projection(ref: DatasetRef, panel: Panel) -> Projection | None:
    """The panel's map: PCA computed here, UMAP/t-SNE only if stored (``None``: not yet)."""
    ekey, spec = embeddings.key(ref, panel.encoder), panel.spec()
    if panel.method != "pca" and not stored(ekey, spec):
        return None
    with st.spinner(f"Computing the {panel.title} map…"):
        return _load(ref, panel.encoder, ekey, spec)


def task_key(ekey: str, spec: ProjectionSpec) -> str:
    """Background task name of one projection (its store key)."""
    return f"project-{cache_key(ekey, spec)}"


def project_argv(ref: DatasetRef, panel: Panel) -> list[str]:
    """``crystalrep project`` arguments that store exactly this panel's map."""
    params = [a for k, v in panel.params for a in ("--param", f"{k}={v}")]
    return ["project", "--dataset", ref.name, "--encoder", panel.encoder, "--method", panel.method,
            "--seed", str(panel.seed), *params, "--json", "--quiet"]


def pending(ref: DatasetRef, panel: Panel) -> None:
    """Start the panel's map in the background if needed and show where it stands."""
    ekey, spec = embeddings.key(ref, panel.encoder), panel.spec()
    key = task_key(ekey, spec)
    task = background.state(key)
    if task.state == "done" and stored(ekey, spec):
        st.rerun()  # it landed between the two checks
    if task.state == "absent":
        background.start(project_argv(ref, panel), key=key)
        task = background.state(key)
    if task.state in ("failed", "done"):
        if task.state == "failed":
            st.error(f"The {panel.title} map failed: {task.message}")
        else:
            st.warning(f"The {panel.title} run finished but the store has no map; check free disk space.")
        if st.button("Retry", key=f"maps.retry.{key}"):
            background.start(project_argv(ref, panel), key=key)
            st.rerun()
    else:
        _wait(key, f"Computing the {panel.title} map of {len(dataset(ref)):,} crystals in the background",
              COLD_HINT[panel.method])


@st.fragment(run_every=2)
def _wait(key: str, what: str, hint: str) -> None:
    task = background.state(key)
    if task.state in ("done", "failed"):
        st.rerun()
    so_far = f" — {task.seconds:.0f} s so far" if task.seconds is not None else ""
    st.info(f"{what}{so_far}.{hint}", icon=":material/hourglass_top:")


@st.cache_data(max_entries=64, show_spinner=False)
def colouring(ref: DatasetRef, column: str, log: bool, clip: float) -> Colouring:
    """:func:`crystalrep.plots.style.colouring` of the dataset, cached."""
    from crystalrep.plots.style import colouring as build

    return build(dataset(ref), column, log=log, clip=clip)


@st.cache_data(max_entries=64, show_spinner=False)
def figure(ref: DatasetRef, panels: tuple[Panel, ...], ekeys: tuple[str, ...], view: View,
           highlight: Highlight) -> go.Figure:
    """The panels' maps as one figure of WebGL subplots (``ekeys`` key the cache to the embeddings)."""
    from crystalrep.plots.projections import MapPanel, maps_figure

    maps = [MapPanel(_load(ref, p.encoder, e, p.spec()).coords, p.title, p.method, p.encoder)
            for p, e in zip(panels, ekeys, strict=True)]
    return maps_figure(maps, dataset(ref), colouring(ref, view.colour, view.log, view.clip),
                       point_size=view.point_size, highlight=highlight)


@st.cache_data(max_entries=64, show_spinner="Scoring the map (trustworthiness, separation)…")
def scores(ref: DatasetRef, panel: Panel, ekey: str, label: str | None) -> MapScores:
    """Trustworthiness of the panel's map, and its separation by ``label`` (a categorical column)."""
    from crystalrep.analysis.map_quality import score_map

    proj = _load(ref, panel.encoder, ekey, panel.spec())
    labels = None if label is None else dataset(ref).table[label]
    return score_map(embeddings.cached(ref, panel.encoder)[0], proj.coords, labels=labels,
                     label=None if label is None else column_label(dataset(ref), label),
                     metric=str(proj.params.get("metric", "euclidean")))


def sweep_controls(ref: DatasetRef, encoders: list[str]) -> tuple[str, str, str, list[Any], list[int]]:
    """Encoder, method, swept parameter, its values and the seeds, from the sweep's widgets."""
    n = len(dataset(ref))
    cols = st.columns([2, 2, 3, 2])
    urlstate.bind("maps.sweep.encoder", "sw_enc", encoders[0], valid=encoders)
    urlstate.bind("maps.sweep.method", "sw_method", "umap", valid=("umap", "tsne"))
    encoder = cols[0].selectbox("Encoder", encoders, key="maps.sweep.encoder")
    method = cols[1].radio("Method", ("umap", "tsne"), format_func=METHOD_NAMES.get, horizontal=True,
                           key="maps.sweep.method")
    param, options, default = SWEEP_VALUES[method]
    limit = n - 1 if method == "umap" else (n - 1) / 3
    options = tuple(v for v in options if v <= limit)
    urlstate.bind(f"maps.sweep.{method}", f"sw_{param}", [v for v in default if v in options], codec=NUMBERS,
                  valid=lambda v: len(v) <= 4 and all(x in options for x in v))
    urlstate.bind("maps.sweep.seeds", "sw_seeds", 3, codec=urlstate.INT, valid=range(2, 5))
    values = cols[2].multiselect(f"{param} values", options, max_selections=4, key=f"maps.sweep.{method}")
    n_seeds = cols[3].slider("Seeds", 2, 4, key="maps.sweep.seeds", help="Seeds 0, 1, … run in every cell.")
    return encoder, method, param, sorted(values), list(range(n_seeds))


def sweep_specs(method: str, param: str, values: list[Any], seeds: list[int]) -> list[ProjectionSpec]:
    """Every (value, seed) projection of a sweep."""
    return [make_spec(method, {param: v}, s) for v in values for s in seeds]


def sweep_argv(ref: DatasetRef, encoder: str, method: str, param: str, values: list[Any], seeds: list[int]) -> list[str]:
    """``crystalrep sweep`` arguments for this grid."""
    return ["sweep", "--dataset", ref.name, "--encoder", encoder, "--method", method,
            "--seeds", ",".join(map(str, seeds)), "--grid", f"{param}={','.join(map(str, values))}", "--json", "--quiet"]


def sweep_key(ekey: str, method: str, param: str, values: list[Any], seeds: list[int]) -> str:
    """Background task name of a sweep."""
    return "sweep-" + content_key({"embedding": ekey, "method": method, param: values, "seeds": seeds})


@st.cache_data(max_entries=16, show_spinner="Aligning the sweep's maps and scoring them…")
def sweep_result(ref: DatasetRef, encoder: str, ekey: str, method: str, param: str, values: tuple[Any, ...],
                 seeds: tuple[int, ...]) -> SweepResult:
    """The sweep, read from the store (call only when every projection is stored)."""
    from crystalrep.analysis.sweeps import sweep

    X = embeddings.cached(ref, encoder)[0]
    return sweep(X, method=method, grid={param: list(values)}, seeds=list(seeds), embedding_key=ekey)


@st.cache_data(max_entries=16, show_spinner="Drawing the sweep grid…")
def sweep_png(ref: DatasetRef, encoder: str, ekey: str, method: str, param: str, values: tuple[Any, ...],
              seeds: tuple[int, ...], view: View) -> bytes:
    """The sweep's small multiples as one PNG, coloured like the live maps."""
    from crystalrep.plots.projections import sweep_grid_png

    result = sweep_result(ref, encoder, ekey, method, param, values, seeds)
    title = f"{METHOD_NAMES[method]} of {encoder} on {ref.name}: seeds × {param} (rotated onto the top-left panel; each panel zoomed to fit)"
    return sweep_grid_png(result, colouring(ref, view.colour, view.log, view.clip), title=title,
                          point_size=view.point_size)


@st.fragment(run_every=2)
def sweep_wait(key: str, ekey: str, specs: list[ProjectionSpec]) -> None:
    """Progress of a running sweep: how many of its projections the store already holds."""
    task = background.state(key)
    done = sum(stored(ekey, s) for s in specs)
    if task.state in ("done", "failed"):
        st.rerun()
    st.progress(done / len(specs), text=f"Sweep running in the background: {done} of {len(specs)} maps stored"
                                         + (f" after {task.seconds:.0f} s" if task.seconds is not None else ""))


def record(ref: DatasetRef, panel: Any, ekey: str, view: View, colour: Any) -> None:
    """Write the drawn map's view (colour property, scale, clip) for the Checklist page (idempotent)."""
    from crystalrep.checklist.build import record_view

    categorical = colour.kind == "categorical"
    record_view(dataset(ref), encoder=panel.encoder, embedding_key=ekey, method=panel.method,
                params=dict(panel.params), seed=panel.seed, colour=view.colour,
                scale="categorical" if categorical else ("log" if view.log else "linear"),
                clip=(view.clip, 100 - view.clip) if view.clip > 0 and not categorical else None)


def ready(ref: DatasetRef, panels: list[Panel]) -> list[tuple[Panel, Projection]]:
    """The panels whose map is stored (or PCA, computed now); the others start or wait in the background."""
    out = []
    for panel in panels:
        proj = projection(ref, panel)
        if proj is None:
            pending(ref, panel)
        else:
            out.append((panel, proj))
    return out


def captions(ref: DatasetRef, drawn: list[tuple[Panel, Projection]], view: View, colour: Colouring) -> None:
    """One caption per drawn map (how it was made, trustworthiness, separation); records each view for the Checklist."""
    from crystalrep.plots.projections import panel_caption

    label = view.colour if colour.kind == "categorical" else None
    for panel, proj in drawn:
        ekey = embeddings.key(ref, panel.encoder)
        prefix = f"*{panel.encoder}* · " if len(drawn) > 1 else ""
        st.caption(prefix + panel_caption(proj, scores(ref, panel, ekey, label)))
        record(ref, panel, ekey, view, colour)


def map_panel(ref: DatasetRef, encoder: str, *, key: str) -> Panel:
    """A picker (``key``, ``map`` in the URL) for the one map a page draws its crystals on, and that map.

    PCA (standardised) is drawn at once; UMAP/t-SNE with their defaults and seed 0 start in the
    background the first time.
    """
    n = len(dataset(ref))
    methods = ["pca", "umap", "tsne"] if n >= MIN_NONLINEAR else ["pca"]
    urlstate.bind(key, "map", "pca", valid=methods)
    method = st.segmented_control("Map", methods, format_func=METHOD_NAMES.get, required=True, key=key,
                                  help="Where the points sit (default parameters, seed 0); the Projections page "
                                       "compares maps and their settings.")
    params = {"pca": (("standardize", True),), "umap": (("min_dist", 0.1), ("n_neighbors", min(15, n - 1))),
              "tsne": (("perplexity", float(min(30, (n - 1) // 3))),)}[method]
    return Panel(encoder, method, params, 0)
