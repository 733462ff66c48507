"""Projections page glue: panels, cached maps and scores, and UMAP/t-SNE runs in the background.

PCA is computed in the page (well under a second). UMAP and t-SNE run as ``crystalrep project``
in a detached process (:mod:`crystalrep.jobs.background`), whatever the dataset size: a fresh
process spends about a minute compiling UMAP's numba code, and even t-SNE on ~2,000 crystals
takes seconds that should not block the page. The page draws a map once the store holds it,
polling in a fragment meanwhile. Cached functions take keys (dataset ref, embedding key, spec),
never arrays. Every map the page draws is one figure with subplots (one WebGL context), so any
number of encoders can be compared side by side; a figure ships at most ``View.max_points``
points (a seeded sample over a density image of every crystal above that). The controls are in
:mod:`ui.map_controls`, the sweep in :mod:`ui.map_sweep`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from crystalrep.analysis.projections import KIND, Projection, ProjectionSpec, cache_key, make_spec
from crystalrep.jobs import background
from crystalrep.plots.projections import METHOD_NAMES, Highlight
from crystalrep.plots.sampling import POINT_BUDGET
from crystalrep.plots.style import Colouring, column_label
from crystalrep.store import Store
from ui import embeddings, urlstate
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.analysis.map_quality import MapScores

MIN_NONLINEAR = 10  # fewer crystals than this: UMAP/t-SNE neighbourhoods say nothing
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
    max_points: int = POINT_BUDGET

    @property
    def encoders(self) -> list[str]:
        """Encoders of the panels, in order."""
        return list(dict.fromkeys(p.encoder for p in self.panels))

    def live(self, usable: Collection[str]) -> tuple[list[Panel], str]:
        """The panels whose encoder could embed the dataset (all drawn: one figure, one WebGL context)."""
        return [p for p in self.panels if p.encoder in usable], self.note


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


@st.cache_resource(max_entries=8, show_spinner=False)  # shared, not copied: unpickling 50k points costs ~0.5 s
def figure(ref: DatasetRef, panels: tuple[Panel, ...], ekeys: tuple[str, ...], view: View,
           highlight: Highlight) -> go.Figure:
    """The panels' maps as one figure of WebGL subplots (``ekeys`` key the cache to the embeddings); read-only."""
    from crystalrep.plots.projections import MapPanel, maps_figure

    maps = [MapPanel(_load(ref, p.encoder, e, p.spec()).coords, p.title, p.method, p.encoder)
            for p, e in zip(panels, ekeys, strict=True)]
    return maps_figure(maps, dataset(ref), colouring(ref, view.colour, view.log, view.clip),
                       point_size=view.point_size, highlight=highlight, max_points=view.max_points,
                       seed=panels[0].seed if panels else 0)


SCORES_KIND = "map_scores"
SCORES_VERSION = 1


@st.cache_data(max_entries=64, show_spinner="Scoring the map (trustworthiness, separation)…")
def scores(ref: DatasetRef, panel: Panel, ekey: str, label: str | None) -> MapScores:
    """Trustworthiness of the panel's map, and its separation by ``label`` (a categorical column).

    Kept in the store (``map_scores``) under what made them: the projection's store key, a hash
    of the label values, the label's name and the metric. A fresh server reads them back instead
    of importing scikit-learn and scoring again.
    """
    import hashlib
    from dataclasses import asdict

    import pandas as pd

    from crystalrep.analysis.map_quality import MapScores, score_map

    spec = panel.spec()
    proj = _load(ref, panel.encoder, ekey, spec)
    labels = None if label is None else dataset(ref).table[label]
    name = None if label is None else column_label(dataset(ref), label)
    metric = str(proj.params.get("metric", "euclidean"))
    key = {"v": SCORES_VERSION, "projection": cache_key(ekey, spec), "label": name, "metric": metric,
           "labels": None if labels is None else hashlib.sha256(
               pd.util.hash_pandas_object(labels, index=False).to_numpy().tobytes()).hexdigest()}

    def compute() -> dict[str, Any]:
        X = embeddings.cached(ref, panel.encoder)[0]
        return asdict(score_map(X, proj.coords, labels=labels, label=name, metric=metric))

    value, _ = Store().memo_json(SCORES_KIND, key, compute,
                                 accept=lambda v: isinstance(v, dict) and set(v) == set(MapScores.__dataclass_fields__))
    return MapScores(**value)


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
    from crystalrep.plots.map_captions import panel_caption

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
