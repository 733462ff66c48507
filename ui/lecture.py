"""Lecture page glue: run-on-demand sections, cached wrappers of :mod:`crystalrep.lecture`, tolerant embedding.

Cached functions take the :class:`~ui.cache.DatasetRef` and the encoders' store keys, so a rebuilt
dataset or a retrained checkpoint is never served stale. Every number comes from
:mod:`crystalrep.lecture` (runs, examples, analogies), which also keeps the heavier results in the
store. Below them: "prepare all sections", which runs ``crystalrep lecture prepare`` as a background
task and shows its progress (presenter mode's switch and picker are in :mod:`ui.lecture_presenter`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

from crystalrep.lecture import analogies as lecture
from crystalrep.lecture import examples
from crystalrep.lecture import runs as lecture_runs
from crystalrep.lecture.runs import GEOMETRY, INVARIANCE_N
from ui import embeddings
from ui.cache import DatasetRef, dataset
from ui.messages import sentence

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["GEOMETRY", "INVARIANCE_N"]

FAMILY = "lecture.family"
ANALOGY = "lecture.analogy"
PRESENTER = "lecture.presenter"
SECTION = "lecture.section"


def ran(section: int, label: str = "Run", *, ready: bool = False) -> bool:
    """A Run button whose press is remembered for the session; ``ready`` (all results stored) needs no press."""
    key = f"lecture.ran.{section}"
    if ready:
        return True
    st.button(label, key=f"lecture.run.{section}", type="primary", disabled=bool(st.session_state.get(key)),
              on_click=st.session_state.__setitem__, args=(key, True))  # set before the rerun draws the button
    return bool(st.session_state.get(key))


@st.cache_data(max_entries=64, show_spinner=False)
def _invariance(ref: DatasetRef, name: str, key: str, n: int) -> dict[str, Any]:
    try:
        return lecture_runs.invariance_cached(dataset(ref), embeddings.encoder(name), n=n, seed=lecture_runs.SEED)
    except (ValueError, OSError) as exc:
        return {"error": f"{name}: {sentence(exc)}"}


def invariance_all(ref: DatasetRef, names: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Invariance results per encoder (with a progress bar while computing) and error sentences."""
    results, errors = {}, []
    bar = st.progress(0.0)
    for i, name in enumerate(names):
        bar.progress(i / len(names), text=f"Transforming {INVARIANCE_N} crystals and embedding them with {name} "
                                          f"({i + 1} of {len(names)})…")
        try:
            result = _invariance(ref, name, embeddings.key(ref, name), INVARIANCE_N)
        except (ValueError, OSError) as exc:  # the encoder itself cannot be built
            result = {"error": f"{name}: {sentence(exc)}"}
        if "error" in result:
            errors.append(result["error"])
        else:
            results[name] = result
    bar.empty()
    return results, errors


def _embedding(ref: DatasetRef, name: str) -> tuple[np.ndarray, str]:
    if name == GEOMETRY:
        ds = dataset(ref)
        return lecture.geometry_only_embedding(ds), lecture.geometry_key(ds)
    hit = embeddings.cached(ref, name)
    if hit is None:
        raise ValueError(f"the {name} embedding is not stored yet.")
    return hit[0], embeddings.key(ref, name)


def _key(ref: DatasetRef, name: str) -> str:
    return lecture.geometry_key(dataset(ref)) if name == GEOMETRY else embeddings.key(ref, name)


@st.cache_data(max_entries=32, show_spinner=False)
def _grid(ref: DatasetRef, names: tuple[str, ...], keys: tuple[str, ...],
          properties: tuple[str, ...] | None) -> pd.DataFrame:
    embs = {name: _embedding(ref, name) for name in names}
    return lecture_runs.probe_grid(dataset(ref), embs, properties=None if properties is None else list(properties))


def probe_grid(ref: DatasetRef, names: list[str], properties: list[str] | None = None) -> pd.DataFrame:
    """Grouped-split probe R² of each embedding (``GEOMETRY`` or a stored encoder) on each property.

    Raises:
        ValueError: Too few crystals or chemical systems for a grouped 5-fold split.
    """
    keys = tuple(_key(ref, n) for n in names)
    return _grid(ref, tuple(names), keys, None if properties is None else tuple(properties))


@st.cache_data(max_entries=32, show_spinner=False)
def _map(ref: DatasetRef, name: str, key: str) -> tuple[np.ndarray, dict[str, Any]]:
    X, _ = _embedding(ref, name)
    return lecture_runs.tsne_map(X, key)


def tsne_map(ref: DatasetRef, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """t-SNE coordinates and map scores (:func:`crystalrep.lecture.runs.tsne_map`)."""
    return _map(ref, name, _key(ref, name))


def map_figure(ref: DatasetRef, names: list[str], prop: str, titles: list[str]) -> go.Figure:
    """Both t-SNE maps coloured by ``prop`` (:func:`crystalrep.plots.lecture.map_pair_figure`)."""
    from crystalrep.plots import data as plots
    from crystalrep.plots import lecture as plots_lecture

    ds = dataset(ref)
    values = pd.to_numeric(ds.table[prop], errors="coerce").to_numpy(dtype=np.float64)
    return plots_lecture.map_pair_figure([tsne_map(ref, n)[0] for n in names], values, titles=titles,
                                         colour_label=plots.axis_label(ds.properties[prop]),
                                         hover=plots_lecture.hover_text(ds.table, prop))


@st.cache_data(max_entries=8, show_spinner="Finding analogy squares…")
def analogies(ref: DatasetRef) -> pd.DataFrame:
    """Every analogy square of the dataset (:func:`crystalrep.lecture.analogies.find_analogies`)."""
    return lecture.find_analogies(dataset(ref))


def formulas(ref: DatasetRef) -> list[str]:
    """Reduced formula of every row."""
    return dataset(ref).table["formula"].astype(str).tolist()


def analogy_choices(ref: DatasetRef, family: str) -> list[tuple[int, int, int, int]]:
    """The family's analogies, the lecture's headline square first (:func:`examples.ordered_choices`)."""
    quads = analogies(ref)
    return examples.ordered_choices(quads[quads["family"] == family], formulas(ref))


def lecture_example(ref: DatasetRef, family: str) -> list[str]:
    """Crystals of the headline square (BaTiO3, BaZrO3, SrZrO3, SrTiO3) that the family lacks."""
    table = dataset(ref).table
    rows = table["formula"] if "prototype" not in table else table.loc[table["prototype"].astype(str) == family, "formula"]
    return examples.missing_example(rows.astype(str).tolist())


@st.cache_data(max_entries=64, show_spinner="Scoring every analogy of the family…")
def _tables(ref: DatasetRef, names: tuple[str, ...], keys: tuple[str, ...], family: str,
            quad: tuple[int, int, int, int]) -> examples.AnalogyTables:
    quads = analogies(ref)
    family_quads = quads[quads["family"] == family][["a", "b", "c", "d"]].to_numpy()
    arrays = {name: _embedding(ref, name)[0] for name in names}
    return examples.analogy_tables(arrays, formulas(ref), family_quads, quad)


def analogy_tables(ref: DatasetRef, names: list[str], family: str,
                   quad: tuple[int, int, int, int]) -> examples.AnalogyTables:
    """Per encoder: the chosen analogy, the family's summary and the b → d walk (:func:`examples.analogy_tables`)."""
    return _tables(ref, tuple(names), tuple(embeddings.key(ref, n) for n in names), family, quad)


def pick(grid: pd.DataFrame, prop: str | None = None) -> tuple[str, str, bool]:
    """(property, best encoder, cell-size R² near 0) (:func:`crystalrep.lecture.runs.pick_contrast`)."""
    return lecture_runs.pick_contrast(grid, control=GEOMETRY, property=prop)


def r2(grid: pd.DataFrame, name: str, prop: str) -> tuple[float, float]:
    """(mean, std) probe R² of one embedding on one property."""
    row = grid[(grid["embedding"] == name) & (grid["property"] == prop)].iloc[0]
    return float(row["r2_mean"]), float(row["r2_std"])


def pretrained(names: list[str]) -> list[str]:
    """Section 3's ``cgcnn@…`` encoders (:func:`crystalrep.lecture.prepare.pretrained`)."""
    from crystalrep.lecture.prepare import pretrained as choose
    from ui import state

    return choose(names, state.encoder_names())


def probe_property(numeric: list[str]) -> str:
    """The sidebar's property when it is numeric, else the first numeric one."""
    from ui import state

    prop = state.current_property()
    return prop if prop in numeric else numeric[0]


STUDY_COMMAND = "crystalrep study cdssl --budget-minutes 120"
STUDY_PROPERTY = "lecture.study.property"


def study_report() -> dict[str, Any] | None:
    """The newest CDSSL study report in the store, full before smoke (:func:`crystalrep.study.load_report`).

    Read on every run (two small files), so a study that finishes while the page is open shows up.
    """
    from crystalrep.study import load_report

    return load_report()


def presenting() -> bool:
    """Whether presenter mode is on (one section per screen, projector-sized text)."""
    return bool(st.session_state.get(PRESENTER))


def _task(ref: DatasetRef, names: list[str]) -> str:
    from crystalrep.store import content_key

    return "lecture-" + content_key({"dataset": dataset(ref).fingerprint, "encoders": sorted(names)})[:24]


@st.cache_data(max_entries=32, show_spinner="Checking what the lecture has stored…")
def _plan(ref: DatasetRef, names: tuple[str, ...], available: tuple[str, ...],
          stamp: str) -> list[tuple[int, str, float]]:
    from crystalrep.lecture.prepare import Preparation

    steps = Preparation(dataset(ref), list(names), available=list(available)).steps()
    return [(s.section, s.label, s.seconds) for s in steps]


def prepare_panel(ref: DatasetRef, names: list[str]) -> bool:
    """"Prepare all sections" in the background, with its estimate; True when every section is stored."""
    from crystalrep.cli.lecture import minutes
    from crystalrep.jobs import background
    from ui import state

    if not names:
        return False
    key = _task(ref, names)
    task = background.state(key)
    ran = tuple(bool(st.session_state.get(f"lecture.ran.{i}")) for i in range(1, 5))
    steps = _plan(ref, tuple(names), tuple(state.encoder_names()), f"{task.state}:{task.started}:{ran}")
    if not steps:
        if not presenting():
            st.caption("All four sections are prepared: each opens without computing.")
        return True
    if task.running:
        _progress(key)
        return False
    if task.state == "failed":
        st.error(f"The last preparation failed: {task.message}")
    total = sum(s[2] for s in steps)
    argv = ["lecture", "prepare", "--dataset", ref.name, "--encoders", ",".join(names)]
    st.button(f"Prepare all sections in the background ({minutes(total)})", key="lecture.prepare",
              icon=":material/play_circle:", on_click=background.start, args=(argv,), kwargs={"key": key},
              help="Computes every embedding, invariance table, probe and t-SNE map the four sections show into "
                   "the store, so none of them makes the room wait. The estimate is for this machine's CPU.")
    st.caption(f"Not stored yet: {', '.join(label for _, label, _ in steps)}.")
    return False


@st.fragment(run_every=2)
def _progress(key: str) -> None:
    import re

    from crystalrep.jobs import background

    task = background.state(key)
    if not task.running:
        st.rerun()  # finished: redraw the page, whose sections now open without computing
    found = re.search(r"step (\d+) of (\d+)", task.message)
    done = (int(found[1]) - 1) / int(found[2]) if found else 0.0
    text = task.message.removeprefix("lecture:").strip() or "starting"
    st.progress(done, text=f"Preparing the lecture in the background: {text}.")
