"""Projections page glue: the controls, cached maps and scores, and UMAP/t-SNE runs in the background.

PCA is computed in the page (well under a second). UMAP and t-SNE run as ``crystalrep project``
in a detached process (:mod:`crystalrep.jobs.background`), whatever the dataset size: a fresh
process spends about a minute compiling UMAP's numba code, and even t-SNE on ~2,000 crystals
takes seconds that should not block the page. The page draws a map once the store holds it,
polling in a fragment meanwhile. Cached functions take keys (dataset ref, embedding key, spec),
never arrays.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from crystalrep.analysis.projections import KIND, Projection, ProjectionSpec, cache_key, make_spec
from crystalrep.jobs import background
from crystalrep.plots.projections import METHOD_NAMES, Colouring, colour_options, column_label
from crystalrep.store import Store, content_key
from ui import embeddings, state
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.analysis.map_quality import MapScores
    from crystalrep.analysis.sweeps import SweepResult
    from crystalrep.datasets import Dataset

MODES = ("compare methods", "compare encoders")
MAX_LIVE = 3  # browsers cap live WebGL contexts; the sweep grid is one static image
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
        """At most :data:`MAX_LIVE` panels whose encoder could embed the dataset, and a note if some are left out."""
        ok = [p for p in self.panels if p.encoder in usable]
        if len(ok) <= MAX_LIVE:
            return ok, self.note
        return ok[:MAX_LIVE], (f"Showing the first {MAX_LIVE} of {len(ok)} encoders (browsers cap the number of live "
                               "WebGL charts); choose fewer in the sidebar to pick which.")


def _init(key: str, default: Any, lo: float | None = None, hi: float | None = None) -> None:
    """Give a widget its default through session state, or keep a remembered value inside a range
    that shrank (a smaller dataset); the widget is then created without ``value`` (one source)."""
    value = st.session_state.get(key, default)
    if lo is not None and hi is not None:
        value = min(max(value, lo), hi)
    st.session_state[key] = value


def method_params(n: int) -> dict[str, tuple[tuple[str, Any], ...]]:
    """Draw the hyperparameter widgets; their values per method (ranges valid for ``n`` crystals)."""
    cols = st.columns(4)
    hi_nn, hi_perp = min(100, n - 1), min(100, (n - 1) // 3)
    _init("maps.n_neighbors", min(15, hi_nn), 2, hi_nn)
    _init("maps.perplexity", min(30, hi_perp), 2, hi_perp)
    _init("maps.min_dist", 0.1)
    _init("maps.size", 5)
    nn = cols[0].slider("UMAP n_neighbors", 2, hi_nn, key="maps.n_neighbors",
                        help="Neighbours UMAP keeps: small values favour local detail, large ones global shape.")
    md = cols[1].select_slider("UMAP min_dist", MIN_DISTS, key="maps.min_dist",
                               help="How tightly UMAP packs points together.")
    perp = cols[2].slider("t-SNE perplexity", 2, hi_perp, key="maps.perplexity",
                          help=f"Effective neighbours of t-SNE; at most (n − 1)/3 = {hi_perp} here.")
    cols[3].slider("Point size", 2, 12, key="maps.size")
    return {"pca": (), "umap": (("min_dist", md), ("n_neighbors", nn)), "tsne": (("perplexity", float(perp)),)}


def _colour_picker(ds: Dataset) -> tuple[str, bool, float]:
    options = colour_options(ds)
    sidebar = state.current_property() if state.current_property() in options else next(iter(options))
    if st.session_state.get("maps.colour_follows") != sidebar:  # the sidebar property is the default
        st.session_state["maps.colour"] = st.session_state["maps.colour_follows"] = sidebar
    cols = st.columns([2, 1, 2])
    column = cols[0].selectbox("Colour by", list(options), key="maps.colour",
                               format_func=lambda c: column_label(ds, c), help="Defaults to the sidebar property.")
    categorical = options[column] == "categorical"
    log = cols[1].toggle("Log scale", key="maps.log", disabled=categorical)
    clip = cols[2].select_slider("Clip colour range at each end (%)", CLIPS, 0.0, key="maps.clip",
                                 disabled=categorical, help="Percentiles clipped so outliers do not wash out the scale.")
    return column, log and not categorical, 0.0 if categorical else clip


def controls(ds: Dataset, encoders: list[str]) -> View:
    """Draw the page's controls and return the panels asked for (:meth:`View.live` picks those drawn)."""
    n = len(ds)
    methods = ["pca", "umap", "tsne"] if n >= MIN_NONLINEAR else ["pca"]
    top = st.columns([2, 2, 1])
    mode = top[0].radio("Compare", MODES, horizontal=True, key="maps.mode")
    seed = int(top[2].number_input("Seed", 0, 2**31 - 1, 0, key="maps.seed"))
    note = "" if n >= MIN_NONLINEAR else (f"UMAP and t-SNE need at least {MIN_NONLINEAR} crystals (this dataset has "
                                          f"{n}), so only PCA is offered.")
    if mode == MODES[0]:
        chosen = top[1].selectbox("Encoder", encoders, key="maps.encoder")
        pairs = [(chosen, m) for m in methods]
    else:
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
    """:func:`crystalrep.plots.projections.colouring` of the dataset, cached."""
    from crystalrep.plots.projections import colouring as build

    return build(dataset(ref), column, log=log, clip=clip)


@st.cache_data(max_entries=64, show_spinner=False)
def figure(ref: DatasetRef, panel: Panel, ekey: str, view: View) -> go.Figure:
    """The panel's WebGL scatter (``ekey`` keys the cache to the embedding)."""
    from crystalrep.plots.projections import map_figure

    proj = _load(ref, panel.encoder, ekey, panel.spec())
    return map_figure(proj.coords, dataset(ref), colouring(ref, view.colour, view.log, view.clip), title=panel.title,
                      method=panel.method, point_size=view.point_size)


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
    encoder = cols[0].selectbox("Encoder", encoders, key="maps.sweep.encoder")
    method = cols[1].radio("Method", ("umap", "tsne"), format_func=METHOD_NAMES.get, horizontal=True,
                           key="maps.sweep.method")
    param, options, default = SWEEP_VALUES[method]
    limit = n - 1 if method == "umap" else (n - 1) / 3
    options = tuple(v for v in options if v <= limit)
    values = cols[2].multiselect(f"{param} values", options, [v for v in default if v in options], max_selections=4,
                                 key=f"maps.sweep.{method}")
    n_seeds = cols[3].slider("Seeds", 2, 4, 3, key="maps.sweep.seeds", help="Seeds 0, 1, … run in every cell.")
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
