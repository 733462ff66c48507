"""Retrieval page glue: widget keys (all in the URL), cached neighbour searches, P@k comparison, the map
of the query and its neighbours, and 3-D figures.

Every cached function takes the :class:`~ui.cache.DatasetRef` and the embedding's store key
(dataset fingerprint + encoder fingerprint), so a rebuilt dataset or retrained checkpoint is
never served stale. The fitted kNN index itself stays in memory inside the library
(:func:`crystalrep.analysis.retrieval.dataset_index`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from crystalrep.analysis import retrieval
from crystalrep.plots import structures as plots_structures
from ui import embeddings, urlstate
from ui.cache import DatasetRef, dataset
from ui.messages import sentence

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from pymatgen.core import Structure

    from crystalrep.plots.projections import Highlight
    from ui.projections import Panel

ENCODER = "retrieval.encoder"
K = "retrieval.k"
METRIC = "retrieval.metric"
SOURCE = "retrieval.source"
ROW = "retrieval.row"
UPLOAD = "retrieval.upload"
MAP = "retrieval.map"
FROM_DATASET, FROM_UPLOAD = "A crystal of this dataset", "An uploaded file"
MAX_K = 50
N_VIEWS = 4  # neighbours drawn in 3-D beside the query (a 2 × 2 grid as tall as the query's view)
SMALL_VIEW = 250  # px
_SOURCES = urlstate.Codec(lambda v: "upload" if v == FROM_UPLOAD else "dataset",
                          lambda t: {"dataset": FROM_DATASET, "upload": FROM_UPLOAD}[t])
SEARCH_RECALL = "search recall@10"
UPLOAD_HELP = "CIF, POSCAR/CONTCAR (.vasp) or pymatgen JSON (.json), optionally gzipped; one ordered crystal."


@dataclass(frozen=True)
class Search:
    """A neighbour search for the page: the top-k table, or one sentence saying why there is none."""

    table: pd.DataFrame | None = None
    error: str = ""


def clean_state(names: list[str], n: int) -> None:
    """Drop remembered widget values that the current encoders or dataset no longer allow."""
    if st.session_state.get(ENCODER) not in names:
        st.session_state.pop(ENCODER, None)
    if not 1 <= st.session_state.get(K, 1) <= max_k(n):
        st.session_state.pop(K, None)
    if not 0 <= st.session_state.get(ROW, 0) < n:
        st.session_state.pop(ROW, None)


def controls(ref: DatasetRef, names: list[str]) -> tuple[str, int, str, str]:
    """Encoder, k, metric and query source, drawn and bound to the URL (``enc``, ``k``, ``metric``, ``source``).

    The dataset crystal asked about is bound too (``crystal``, by id); an uploaded file cannot be.
    """
    n = len(dataset(ref))
    clean_state(names, n)
    urlstate.bind(ENCODER, "enc", names[0], valid=names)
    urlstate.bind(K, "k", min(10, max_k(n)), codec=urlstate.INT, valid=range(1, max_k(n) + 1))
    urlstate.bind(METRIC, "metric", retrieval.METRICS[0], valid=retrieval.METRICS)
    urlstate.bind(SOURCE, "source", FROM_DATASET, codec=_SOURCES, valid=(FROM_DATASET, FROM_UPLOAD))
    urlstate.bind(ROW, "crystal", 0, codec=urlstate.row_codec(dataset(ref).ids), valid=range(n))
    left, mid, right = st.columns([2, 3, 2])
    name = left.selectbox("Encoder", names, key=ENCODER, help="One of the encoders chosen in the sidebar.")
    k = mid.slider("Neighbours (k)", 1, max_k(n), key=K)
    metric = right.radio("Metric", retrieval.METRICS, key=METRIC, horizontal=True,
                         help="cosine: distance = 1 − cos(angle); euclidean: straight-line distance.")
    source = st.radio("Query", [FROM_DATASET, FROM_UPLOAD], key=SOURCE, horizontal=True)
    return name, int(k), metric, source


def to_dataset_query() -> None:
    """A click on the map asks about that crystal: the query becomes a dataset crystal."""
    st.session_state[SOURCE] = FROM_DATASET


# Shared by all sessions (cache_resource), not unpickled per run (cache_data): ~0.5 s for 100k points.
@st.cache_resource(max_entries=16, show_spinner=False)
def map_figure(ref: DatasetRef, panel: Panel, embedding_key: str, highlight: Highlight, query: str,
               colour: str) -> go.Figure:
    """The encoder's map coloured by ``colour``, the query and its neighbours ringed (``embedding_key`` keys the cache).

    Shared by all sessions: treat it as read-only.
    """
    from crystalrep.plots.projections import METHOD_NAMES, map_figure
    from ui import projections as maps

    title = f"{panel.encoder} · {METHOD_NAMES[panel.method]}: {query} and its neighbours"
    return map_figure(maps.projection(ref, panel).coords, dataset(ref), maps.colouring(ref, colour, False, 0.0),
                      title=title, method=panel.method, highlight=highlight, encoder=panel.encoder)


def max_k(n: int) -> int:
    """Largest k offered for a dataset of ``n`` crystals (a dataset crystal is not its own neighbour)."""
    return max(1, min(MAX_K, n - 1))


@st.cache_resource(show_spinner=False)
def _failures() -> dict[str, str]:
    """Embedding store key -> why that encoder cannot embed that dataset (deterministic, so kept)."""
    return {}


def require(ref: DatasetRef, names: list[str], *, where: str) -> tuple[list[str], dict[str, str]]:
    """Compute the missing embeddings (:func:`ui.embeddings.require`), tolerating encoders that refuse.

    Returns:
        The encoders whose embedding is stored, and ``{encoder: one-sentence reason}`` for those
        that cannot embed this dataset (e.g. SOAP and an element beyond Z = 94).
    """
    known = _failures()
    failed = {n: known[embeddings.key(ref, n)] for n in names if embeddings.key(ref, n) in known}
    todo = [n for n in names if n not in failed]
    slot = st.empty()
    try:
        with slot.container():
            if todo:
                embeddings.require(ref, todo, where=where)
    except ValueError:  # an encoder refused a crystal: find which, embed the others
        slot.empty()
        for n in todo:
            try:
                with slot.container():
                    embeddings.require(ref, [n], where=f"{where}.{n}")
            except ValueError as exc:
                slot.empty()
                failed[n] = known[embeddings.key(ref, n)] = f"{n} cannot embed this dataset ({sentence(exc).rstrip('.')})."
    return [n for n in names if n not in failed], failed


@st.cache_data(max_entries=16, show_spinner=False)
def labels(ref: DatasetRef) -> list[str]:
    """``"id — formula — space group"`` per row, for the crystal picker."""
    return plots_structures.crystal_labels(dataset(ref).table)


def row_label(ref: DatasetRef, row: int) -> str:
    """Row ``row``'s :func:`labels` entry, without building them all (seconds at 200k rows)."""
    return plots_structures.crystal_labels(dataset(ref).table.iloc[[row]])[0]


PICKER_ROWS = 2000  # above this the query picker is a search (a 200k-option list would ship every label)
PICKER_MATCHES = 50
ROW_SEARCH = "retrieval.row_search"


@st.cache_data(max_entries=64, show_spinner=False)
def label_matches(ref: DatasetRef, text: str) -> list[int]:
    """Rows whose picker label contains ``text`` (case-insensitive), at most :data:`PICKER_MATCHES`."""
    needle = text.strip().lower()
    if not needle:
        return []
    out: list[int] = []
    for i, label in enumerate(labels(ref)):
        if needle in label.lower():
            out.append(i)
            if len(out) == PICKER_MATCHES:
                break
    return out


def pick_row(ref: DatasetRef) -> int:
    """The query crystal: a list on small datasets, a search box plus its first matches on big ones."""
    n = len(dataset(ref))
    if n <= PICKER_ROWS:
        names = labels(ref)
        return int(st.selectbox("Crystal (type to search by id, formula or space group)", range(len(names)),
                                format_func=names.__getitem__, key=ROW))
    text = st.text_input(f"Find the query crystal among {n:,} (id, formula or space group)", key=ROW_SEARCH)
    current = int(st.session_state.get(ROW, 0) or 0)
    options = [current, *(i for i in label_matches(ref, text) if i != current)]
    if text.strip() and len(options) == 1:
        st.caption(f"No crystal matches {text.strip()!r}.")
    return int(st.selectbox(f"Crystal (first {PICKER_MATCHES} matches)", options, format_func=lambda i: row_label(ref, i),
                            key=ROW))


@st.cache_data(max_entries=256, show_spinner=False)
def _row_search(ref: DatasetRef, name: str, key: str, row: int, k: int, metric: str) -> pd.DataFrame:
    return retrieval.neighbours_of_row(row, dataset(ref), embeddings.encoder(name), k=k, metric=metric)


def row_neighbours(ref: DatasetRef, name: str, row: int, k: int, metric: str) -> pd.DataFrame:
    """The ``k`` crystals nearest to dataset row ``row`` (itself excluded) in ``name``'s embedding."""
    return _row_search(ref, name, embeddings.key(ref, name), row, k, metric)


@st.cache_data(max_entries=64, show_spinner="Reading and embedding the uploaded crystal…")
def _upload_search(ref: DatasetRef, name: str, key: str, filename: str, data: bytes, k: int, metric: str) -> Search:
    try:
        table = retrieval.neighbours_of(data, dataset(ref), embeddings.encoder(name), k=k, metric=metric,
                                        filename=filename)
    # StructureError (a ValueError) for a bad file; ValueError from an encoder refusing the crystal.
    except ValueError as exc:
        return Search(error=sentence(exc))
    return Search(table=table)


def upload_neighbours(ref: DatasetRef, name: str, filename: str, data: bytes, k: int, metric: str) -> Search:
    """Parse, validate and embed an uploaded crystal, then find its ``k`` nearest dataset crystals."""
    return _upload_search(ref, name, embeddings.key(ref, name), filename, data, k, metric)


@st.cache_data(max_entries=16, show_spinner=False)
def upload_structure(filename: str, data: bytes) -> Structure:
    """The uploaded crystal (only called after :func:`upload_neighbours` accepted it)."""
    return retrieval.read_query(data, filename=filename)


@st.cache_data(max_entries=128, show_spinner=False)
def row_figure(ref: DatasetRef, row: int, *, images: bool, title: str, height: int = 340) -> go.Figure:
    """3-D unit cell of a dataset crystal (:func:`crystalrep.plots.structures.structure_figure`)."""
    return plots_structures.structure_figure(dataset(ref).structure(row), images=images, title=title, height=height)


@st.cache_data(max_entries=16, show_spinner=False)
def upload_figure(filename: str, data: bytes, *, images: bool) -> go.Figure:
    """3-D unit cell of the uploaded crystal."""
    return plots_structures.structure_figure(upload_structure(filename, data), images=images,
                                             title=f"Query: {filename}")


@st.cache_data(max_entries=256, show_spinner=False)
def spread(ref: DatasetRef, rows: tuple[int, ...], query: int | None) -> pd.DataFrame:
    """Numeric properties among the neighbours (:func:`~crystalrep.analysis.retrieval.query_property_spread`)."""
    return retrieval.query_property_spread(dataset(ref), list(rows), query=query).round(4)


@st.cache_data(max_entries=128, show_spinner=False)
def _report(ref: DatasetRef, name: str, key: str, k: int, metric: str, prop: str | None) -> dict[str, float]:
    from crystalrep.analysis.retrieval.report_cache import report_cached

    report, spread_, _ = report_cached(dataset(ref), embeddings.encoder(name), k=k, metric=metric, prop=prop)
    out = {plots_structures.LABELS.get(r.label, r.label): r.precision for r in report.itertuples()}
    out.update({f"chance {plots_structures.LABELS.get(r.label, r.label)}": r.chance for r in report.itertuples()})
    if spread_ is not None:
        out["spread ratio"] = spread_["ratio"]
    if report.attrs["search"]["search"] == "approximate":
        out[SEARCH_RECALL] = float(report.attrs["search"]["recall_at_10"])
    return out


MAX_REPORT_QUERIES = retrieval.MAX_REPORT_QUERIES
REPORT_BACKGROUND_ABOVE = 20_000  # crystals above which the P@k table is computed by a background task


def report_ready(ref: DatasetRef, names: list[str], k: int, metric: str, prop: str | None) -> bool:
    """Whether the store holds every encoder's P@k report (nothing is computed)."""
    from crystalrep.analysis.retrieval.report_cache import KIND, report_key
    from crystalrep.store import Store

    store = Store()
    return all(store.verified(KIND, report_key(dataset(ref), embeddings.encoder(name), k=k, metric=metric, prop=prop))
               is not None for name in names)


def report_task(ref: DatasetRef, names: list[str], k: int, metric: str, prop: str | None) -> tuple[str, list[str]]:
    """Background task name and ``crystalrep precision`` arguments that store what :func:`report_ready` looks for."""
    from ui.background_task import task_key

    argv = ["precision", "--dataset", ref.name, "--encoders", ",".join(names), "-k", str(k), "--metric", metric,
            "--json"] + (["--property", prop] if prop is not None else [])
    return task_key("precision", {"embeddings": [embeddings.key(ref, n) for n in names], "argv": argv}), argv


def caption() -> str:
    """What the page searches and how: full embedding, exact or measured-approximate, standardised descriptors."""
    return ("Nearest neighbours in the encoder's full embedding space (never in a 2-D map): exact, or above "
            f"{retrieval.approximate_threshold():,} crystals a faiss approximate index whose measured recall@10 is "
            f"shown beside the results. {retrieval.STANDARDISED_NOTE}; learned embeddings are compared as they are.")


def search_sentence(info: dict[str, Any] | None) -> str:
    """How the neighbours were found, for a caption beside them: exact, or approximate with its measured recall@10."""
    if not info:
        return ""
    rows, distinct = int(info["rows"]), int(info.get("distinct_vectors", info["rows"]))
    repeats = (f" They hold {distinct:,} distinct vectors: crystals with the same vector tie and are listed in "
               "dataset order." if distinct < rows else "")
    if info.get("search") != "approximate":
        return f"Exact search over all {rows:,} crystals." + repeats
    return (f"Approximate search over {rows:,} crystals ({info['method']}, {info['nlist']:,} lists, "
            f"{info['nprobe']:,} probed): measured recall@10 against exact search = {info['recall_at_10']:.3f} "
            f"on {int(info['n_queries']):,} held-out crystals." + repeats)


def identical_sentence(count: int | None, encoder: str, k: int) -> str:
    """A note beside a crystal's neighbours when other crystals share its vector exactly ("" when none do)."""
    if not count:
        return ""
    if count == 1:
        return (f"1 other crystal has exactly this {encoder} vector, so the embedding cannot tell it from the query: "
                "it comes first, at distance 0.")
    listed = (f"all {k} neighbours listed are among them" if count >= k
              else "they come first, at distance 0")
    return (f"{count:,} other crystals have exactly this {encoder} vector, so the embedding cannot tell them from "
            f"the query: {listed}, in dataset order.")


def comparison(ref: DatasetRef, names: list[str], k: int, metric: str,
               prop: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision@k per label for each encoder plus a chance row, and each encoder's spread ratio of ``prop``.

    The embeddings must be stored already (:func:`ui.embeddings.require`). Random neighbours have
    no spread ratio of their own, so the ratios are a separate table (empty without ``prop``);
    an encoder searched approximately (above the size threshold) has its measured recall@10
    there too.
    """
    rows = {}
    with st.spinner(f"Scoring every crystal's {k} nearest neighbours for {len(names)} encoder(s)…"):
        for name in names:
            rows[name] = _report(ref, name, embeddings.key(ref, name), k, metric, prop)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    side = [c for c in ("spread ratio", SEARCH_RECALL) if c in frame.columns]
    ratio = frame[side]
    frame = frame.drop(columns=ratio.columns)
    chance = [c for c in frame.columns if c.startswith("chance ")]
    if chance:  # chance depends on the labels only: one row, not a column per encoder
        random = frame[chance].iloc[0].rename(lambda c: c.removeprefix("chance "))
        frame = pd.concat([frame.drop(columns=chance), random.to_frame("random neighbours (chance)").T])
    return frame.round(3), ratio.round(3)
