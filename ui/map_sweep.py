"""Projections page sweep: seeds × one parameter, run in the background, drawn as one aligned PNG with a table.

Cached functions take keys (dataset ref, embedding key, grid), never arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from crystalrep.analysis.projections import ProjectionSpec, make_spec
from crystalrep.jobs import background
from crystalrep.plots.projections import METHOD_NAMES
from crystalrep.store import content_key
from ui import embeddings, urlstate
from ui.cache import DatasetRef, dataset
from ui.projections import View, colouring, stored

if TYPE_CHECKING:
    from crystalrep.analysis.sweeps import SweepResult

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
    from crystalrep.plots.sweep_grid import sweep_grid_png

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


