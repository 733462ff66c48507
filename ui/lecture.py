"""Lecture page glue: run-on-demand sections, cached demo results, tolerant embedding.

Cached functions take the :class:`~ui.cache.DatasetRef` and the encoders' store keys, so a rebuilt
dataset or a retrained checkpoint is never served stale; the science lives in
:mod:`crystalrep.lecture.analogies` and :mod:`crystalrep.lecture.runs` (which also keep
the heavier results in the store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import streamlit as st

from crystalrep.lecture import analogies as lecture
from crystalrep.lecture import runs as lecture_runs
from ui import embeddings
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import plotly.graph_objects as go

GEOMETRY = "cell size only"  # display name of the geometry-only control embedding
INVARIANCE_N = 20
ANSWER = "SrTiO3"  # the lecture's example: z(BaTiO3) − z(BaX) + z(SrX) ≈ z(SrTiO3)
QUERY = "BaTiO3"
FAMILY = "lecture.family"
ANALOGY = "lecture.analogy"
MAX_CHOICES = 400


def sentence(exc: BaseException) -> str:
    """The first line of an exception's message, ending with a full stop."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def ran(section: int, label: str = "Run") -> bool:
    """A Run button whose press is remembered for the session (results are cached, so reruns are fast)."""
    key = f"lecture.ran.{section}"
    st.button(label, key=f"lecture.run.{section}", type="primary", disabled=bool(st.session_state.get(key)),
              on_click=st.session_state.__setitem__, args=(key, True))  # set before the rerun draws the button
    return bool(st.session_state.get(key))


@st.cache_resource(show_spinner=False)
def _failures() -> dict[str, str]:
    """Embedding store key -> why that encoder cannot embed that dataset (deterministic, so kept)."""
    return {}


def embedded(ref: DatasetRef, names: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embeddings of ``names``, computing missing ones with a progress bar; refusals become sentences."""
    known, out, failed = _failures(), {}, {}
    for name in dict.fromkeys(names):
        try:
            key = embeddings.key(ref, name)
        except (ValueError, OSError) as exc:
            failed[name] = f"{name} cannot be loaded ({sentence(exc).rstrip('.')})."
            continue
        if key in known:
            failed[name] = known[key]
            continue
        if embeddings.cached(ref, name) is None:
            slot = st.empty()
            try:
                with slot.container():
                    embeddings.compute(ref, [name])
            except ValueError as exc:
                failed[name] = known[key] = f"{name} cannot embed this dataset ({sentence(exc).rstrip('.')})."
                continue
            finally:
                slot.empty()
        hit = embeddings.cached(ref, name)
        if hit is None:
            failed[name] = f"the {name} embedding could not be stored (disk full?)."
        else:
            out[name] = hit[0]
    return out, failed


@st.cache_data(max_entries=64, show_spinner=False)
def _invariance(ref: DatasetRef, name: str, key: str, n: int) -> dict[str, Any]:
    try:
        return lecture_runs.invariance_cached(dataset(ref), embeddings.encoder(name), n=n, seed=0)
    except (ValueError, OSError) as exc:
        return {"error": f"{name}: {sentence(exc)}"}


def invariance(ref: DatasetRef, name: str) -> dict[str, Any]:
    """Invariance scores of one encoder on :data:`INVARIANCE_N` crystals (or ``{"error": sentence}``)."""
    return _invariance(ref, name, embeddings.key(ref, name), INVARIANCE_N)


def _embedding(ref: DatasetRef, name: str) -> tuple[np.ndarray, str]:
    if name == GEOMETRY:
        ds = dataset(ref)
        return lecture.geometry_only_embedding(ds), lecture.geometry_key(ds)
    hit = embeddings.cached(ref, name)
    if hit is None:
        raise ValueError(f"the {name} embedding is not stored yet.")
    return hit[0], embeddings.key(ref, name)


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
    keys = tuple(lecture.geometry_key(dataset(ref)) if n == GEOMETRY else embeddings.key(ref, n) for n in names)
    return _grid(ref, tuple(names), keys, None if properties is None else tuple(properties))


@st.cache_data(max_entries=32, show_spinner=False)
def _map(ref: DatasetRef, name: str, key: str) -> tuple[np.ndarray, dict[str, Any]]:
    from crystalrep.analysis.projections import cache_key, project_cached

    X, _ = _embedding(ref, name)
    proj = project_cached(X, key, method="tsne", seed=0)
    return proj.coords, lecture_runs.map_report(X, proj.coords, key=cache_key(key, proj.spec))


def tsne_map(ref: DatasetRef, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """t-SNE coordinates (openTSNE defaults, seed 0; shared with the Projections page's cache) and map scores."""
    key = lecture.geometry_key(dataset(ref)) if name == GEOMETRY else embeddings.key(ref, name)
    return _map(ref, name, key)


@st.cache_data(max_entries=16, show_spinner=False)
def hover(ref: DatasetRef, prop: str) -> list[str]:
    """``"id · formula · property"`` per row, for map hover text."""
    table = dataset(ref).table
    values = pd.to_numeric(table[prop], errors="coerce")
    return [f"{i} · {f} · {prop} {v:.3g}" for i, f, v in zip(table["id"], table["formula"], values, strict=True)]


def map_figure(ref: DatasetRef, names: list[str], prop: str, titles: list[str]) -> go.Figure:
    """Both t-SNE maps coloured by ``prop`` (:func:`crystalrep.plots.lecture.map_pair_figure`)."""
    from crystalrep.plots import data as plots
    from crystalrep.plots import lecture as plots_lecture
    ds = dataset(ref)
    values = pd.to_numeric(ds.table[prop], errors="coerce").to_numpy(dtype=np.float64)
    return plots_lecture.map_pair_figure([tsne_map(ref, n)[0] for n in names], values, titles=titles,
                                         colour_label=plots.axis_label(ds.properties[prop]), hover=hover(ref, prop))


@st.cache_data(max_entries=8, show_spinner="Finding analogy squares…")
def analogies(ref: DatasetRef) -> pd.DataFrame:
    """Every analogy square of the dataset (:func:`crystalrep.lecture.analogies.find_analogies`)."""
    return lecture.find_analogies(dataset(ref))


def formula(ref: DatasetRef, row: int) -> str:
    """Reduced formula of one row."""
    return str(dataset(ref).table["formula"].iloc[int(row)])


def analogy_label(ref: DatasetRef, quad: tuple[int, int, int, int]) -> str:
    """``"CaTiO3 − CaMoO3 + SrMoO3 ≈ SrTiO3?"``."""
    a, b, c, d = (formula(ref, r) for r in quad)
    return f"{a} − {b} + {c} ≈ {d}?"


def analogy_choices(ref: DatasetRef, family: str) -> list[tuple[int, int, int, int]]:
    """The family's analogies, those answered by :data:`ANSWER` first, at most :data:`MAX_CHOICES`."""
    quads = analogies(ref)
    quads = quads[quads["family"] == family]
    answers = dataset(ref).table["formula"].iloc[quads["d"].to_numpy()].to_numpy()
    ordered = pd.concat([quads[answers == ANSWER], quads[answers != ANSWER]])
    return [tuple(int(v) for v in r) for r in ordered[["a", "b", "c", "d"]].to_numpy()[:MAX_CHOICES]]


@st.cache_data(max_entries=64, show_spinner=False)
def _analogy_rows(ref: DatasetRef, names: tuple[str, ...], keys: tuple[str, ...], family: str,
                  quad: tuple[int, int, int, int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    quads = analogies(ref)
    family_quads = quads[quads["family"] == family][["a", "b", "c", "d"]].to_numpy()
    one, summary, path = [], [], {}
    for name in names:
        X = lecture.standardize(_embedding(ref, name)[0])
        res = lecture.analogy(X, *quad, k=1)
        one.append({"encoder": name, "residual": res.residual, "residual of answering a or c": res.baseline,
                    "rank of the answer": f"{res.rank} of {res.n_candidates}",
                    "nearest to the query": formula(ref, res.nearest[0])})
        stats = lecture.summarize_analogies(X, family_quads)
        summary.append({"encoder": name, "analogies": stats["n"], "median rank": stats["median_rank"],
                        "answer ranked 1st": 100 * stats["top1"], "answer in top 5": 100 * stats["top5"],
                        "median residual": stats["median_residual"],
                        "beats answering a or c": 100 * stats["beats_baseline"]})
        walk = lecture.interpolate(X, quad[1], quad[3], steps=7)
        steps = zip(walk["nearest"], walk["distance"], strict=True)
        path[name] = [f"{formula(ref, r)} ({dist:.2f})" for r, dist in steps]
        path.setdefault("t", [f"{t:.2f}" for t in walk["t"]])
    table = pd.DataFrame(path)
    return pd.DataFrame(one), pd.DataFrame(summary), table[["t", *names]]


def analogy_rows(ref: DatasetRef, names: list[str], family: str,
                 quad: tuple[int, int, int, int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per encoder (standardised embedding): the chosen analogy, the family's summary, and the b → d walk."""
    keys = tuple(embeddings.key(ref, n) for n in names)
    return _analogy_rows(ref, tuple(names), keys, family, quad)


def lecture_example(ref: DatasetRef, family: str) -> list[str]:
    """Which of the lecture's two crystals (BaTiO3, SrTiO3) the family lacks."""
    ds = dataset(ref)
    return [f for f in (QUERY, ANSWER) if not lecture.rows_with_formula(ds, f, family=family)]


def invariance_all(ref: DatasetRef, names: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Invariance results per encoder (with a progress bar while computing) and error sentences."""
    results, errors = {}, []
    bar = st.progress(0.0)
    for i, name in enumerate(names):
        bar.progress(i / len(names), text=f"Transforming {INVARIANCE_N} crystals and embedding them with {name} "
                                          f"({i + 1} of {len(names)})…")
        try:
            result = invariance(ref, name)
        except (ValueError, OSError) as exc:  # the encoder itself cannot be built
            result = {"error": f"{name}: {sentence(exc)}"}
        if "error" in result:
            errors.append(result["error"])
        else:
            results[name] = result
    bar.empty()
    return results, errors


def pick(grid: pd.DataFrame, prop: str | None = None) -> tuple[str, str, bool]:
    """(property, best encoder, cell-size R² near 0) (:func:`crystalrep.lecture.runs.pick_contrast`)."""
    return lecture_runs.pick_contrast(grid, control=GEOMETRY, property=prop)


def r2(grid: pd.DataFrame, name: str, prop: str) -> tuple[float, float]:
    """(mean, std) probe R² of one embedding on one property."""
    row = grid[(grid["embedding"] == name) & (grid["property"] == prop)].iloc[0]
    return float(row["r2_mean"]), float(row["r2_std"])


def pretrained(names: list[str]) -> list[str]:
    """Pretrained ``cgcnn@…`` encoders: those chosen in the sidebar, else the three newest stored."""
    from crystalrep.encoders import CHECKPOINT_PREFIX
    from ui import state

    chosen = [n for n in names if n.startswith(CHECKPOINT_PREFIX)]
    return chosen or [n for n in state.encoder_names() if n.startswith(CHECKPOINT_PREFIX)][-3:]


def probe_property(numeric: list[str]) -> str:
    """The sidebar's property when it is numeric, else the first numeric one."""
    from ui import state

    prop = state.current_property()
    return prop if prop in numeric else numeric[0]
