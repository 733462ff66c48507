"""Linked exploration of a page's maps: click, box/lasso and search highlight crystals in every map.

A click on any point names one crystal (the *focus*): its 3-D structure, its properties and its
k nearest neighbours in the full embedding (:mod:`crystalrep.analysis.retrieval`, via
:mod:`ui.retrieval`), which every map then rings. A box or lasso names a *selection*: a table,
ringed in every map, downloadable as CSV or Parquet with ids. A search by element, formula or id
rings its matches and lists the first :data:`MAX_PICKS` in a picker that focuses one (a search,
never a list of every crystal). All of it is in the URL (:mod:`ui.urlstate`): ``focus``, ``near``,
``nk``, ``sel`` (its first :data:`MAX_URL_ROWS` rows), ``q`` and the 3-D view's ``show`` and ``cell``.
Keys are ``<prefix>.<name>``, one prefix per page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from crystalrep import exports
from crystalrep.plots import structures as plots_structures
from crystalrep.plots.data import plural
from crystalrep.plots.projections import Highlight, selected_rows
from crystalrep.plots.sampling import MAX_RINGS
from ui import downloads, urlstate
from ui import retrieval as rv
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import plotly.graph_objects as go

SELECTION_MODES = ("points", "box", "lasso")
METRIC = "cosine"  # the Retrieval page's default: neighbours here are the ones it lists
MAX_K = 20
CELLS = (1, 2, 3)  # n × n × n supercells offered
SHOW = ["bonds", "polyhedra", "face atoms"]
_SHOWN = urlstate.Codec(lambda v: ",".join(v) or "none", lambda t: [] if t == "none" else urlstate.NAMES.decode(t))
VIEW_HEIGHT = 520  # px: a cell read from across a table
NEIGHBOUR_COLUMNS = ["rank", "id", "formula", "space group", "distance"]
MAX_PICKS = 50  # matches offered in the search's picker
MAX_SELECTION = 10_000  # crystals a box or lasso keeps (a table, an export)
MAX_URL_ROWS = 1_000  # selected crystals written into a link


@dataclass(frozen=True)
class Exploration:
    """What a page's maps highlight: a focused crystal (row), its neighbours' encoder and k, a selection, a search."""

    prefix: str
    focus: int | None
    near: str | None
    k: int
    selection: tuple[int, ...]
    search: tuple[int, ...]
    query: str


def controls(prefix: str, ref: DatasetRef, encoders: Sequence[str], *, focus_key: str | None = None,
             neighbours: bool = True) -> Exploration:
    """Restore the page's exploration from the URL or session and draw the search box.

    Args:
        prefix: The page's key prefix.
        ref: The dataset.
        encoders: Encoders whose embeddings the neighbours may come from (the first is the default).
        focus_key: Session key holding the focused row when the page owns it (Retrieval's crystal
            picker); ``None``: this module keeps it under ``<prefix>.focus``.
        neighbours: Whether this module finds the focus's neighbours (``near`` and ``nk`` in the
            URL); ``False`` when the page has its own search (Retrieval).
    """
    ds = dataset(ref)
    n = len(ds)
    row, rows = _codecs(ref)
    if focus_key is None:
        focus_key = f"{prefix}.focus"
        focus = urlstate.bind(focus_key, "focus", None, codec=row, valid=lambda v: v is None or 0 <= v < n)
    else:
        focus = st.session_state.get(focus_key)
    near, k = None, 0
    if neighbours:
        near = urlstate.bind(f"{prefix}.near", "near", encoders[0] if encoders else None, valid=list(encoders))
        k = urlstate.bind(f"{prefix}.nk", "nk", min(5, n - 1), codec=urlstate.INT,
                          valid=range(1, min(MAX_K, n - 1) + 1))
    selection = urlstate.bind(f"{prefix}.sel", "sel", (), codec=rows,
                              valid=lambda v: len(v) <= MAX_SELECTION and all(0 <= r < n for r in v))
    query = urlstate.bind(f"{prefix}.q", "q", "")
    hits = search(ref, query) if query.strip() else ()
    _search_box(ref, prefix, query, hits, focus_key)
    return Exploration(prefix, focus, near, int(k), tuple(selection), hits, query)


@st.cache_resource(max_entries=4, show_spinner=False)
def _codecs(ref: DatasetRef) -> tuple[urlstate.Codec, urlstate.Codec]:
    """The focus and selection codecs of a dataset (an id index built once, not on every rerun)."""
    ids = dataset(ref).ids
    many = urlstate.rows_codec(ids)
    capped = urlstate.Codec(lambda v: many.encode(tuple(v)[:MAX_URL_ROWS]), many.decode, many=True)
    return urlstate.row_codec(ids), capped


@st.cache_data(max_entries=64, show_spinner=False)
def search(ref: DatasetRef, query: str) -> tuple[int, ...]:
    """Rows matching ``query`` (:func:`crystalrep.plots.structures.search_rows`), in dataset order."""
    return tuple(int(r) for r in plots_structures.search_rows(dataset(ref), query))


def _search_box(ref: DatasetRef, prefix: str, query: str, hits: tuple[int, ...], focus_key: str) -> None:
    """The search box, its count, and a picker of the first :data:`MAX_PICKS` matches that focuses one."""
    ds = dataset(ref)
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    left.text_input("Find crystals", key=f"{prefix}.q", placeholder="element, formula or id: Ba O, TiO2, aflow-A12B",
                    help="Every word must match: an element symbol (crystals containing it), a formula or part of "
                         "an id. Matches are ringed in blue in every map; pick one to focus it.")
    if not query.strip():
        return
    shown = min(len(hits), MAX_RINGS)
    ringed = "" if not hits else (", ringed in blue" if shown == len(hits) else f", the first {shown:,} ringed in blue")
    st.caption(f"{plural(len(hits), 'crystal')} match “{query.strip()}”{ringed}.")
    if not hits:
        return
    picks = list(hits[:MAX_PICKS])
    formulas, ids = ds.table["formula"].to_numpy(), ds.ids
    key = f"{prefix}.pick"
    if key in st.session_state and st.session_state[key] not in picks:
        del st.session_state[key]  # a new search: its old pick is gone

    def focus() -> None:
        if st.session_state.get(key) is not None:
            st.session_state[focus_key] = st.session_state[key]

    right.selectbox(f"Focus a match ({'first ' if len(hits) > MAX_PICKS else ''}{len(picks)} listed)", picks,
                    key=key, index=None, placeholder="pick a crystal", on_change=focus,
                    format_func=lambda r: f"{formulas[r]} · {ids[r]}")


def highlight(ref: DatasetRef, ex: Exploration) -> tuple[Highlight, pd.DataFrame | None]:
    """The layers every map draws, and the focused crystal's neighbour table (``None`` without a focus)."""
    table = None
    if ex.focus is not None and ex.near is not None:
        table = rv.row_neighbours(ref, ex.near, ex.focus, ex.k, METRIC)
    rows = () if table is None else tuple(int(r) for r in table["row"])
    return Highlight(focus=ex.focus, neighbours=rows, selection=ex.selection, search=ex.search), table


def _on_select(key: str, prefix: str, encoders: tuple[str, ...], focus_key: str,
               on_focus: Callable[[], None] | None) -> None:
    event = st.session_state.get(key)
    if event is None:
        return
    selection = event["selection"]
    rows, panels = selected_rows(selection.get("points", []))
    if selection.get("box") or selection.get("lasso") or len(set(rows)) > 1:
        st.session_state[f"{prefix}.sel"] = tuple(sorted(set(rows)))[:MAX_SELECTION]
    elif rows:  # a click: that crystal, with neighbours in the clicked map's embedding
        st.session_state[focus_key] = rows[0]
        if panels and 0 <= panels[0] < len(encoders) and encoders[panels[0]]:
            st.session_state[f"{prefix}.near"] = encoders[panels[0]]
        if on_focus is not None:
            on_focus()
    else:  # a double-click on empty space clears the region
        st.session_state[f"{prefix}.sel"] = ()


def chart(fig: go.Figure, *, key: str, prefix: str, encoders: Sequence[str], focus_key: str | None = None,
          on_focus: Callable[[], None] | None = None) -> None:
    """Draw a map figure whose clicks and box/lasso selections drive the page's exploration.

    ``encoders[i]`` is the encoder of panel ``i`` (a click there takes neighbours from it);
    ``on_focus`` runs after a click has set the focus (Retrieval switches to a dataset query).
    """
    callback = functools.partial(_on_select, key, prefix, tuple(encoders), focus_key or f"{prefix}.focus", on_focus)
    st.plotly_chart(fig, key=key, on_select=callback, selection_mode=SELECTION_MODES,
                    config={"displaylogo": False})
    st.caption("Click a crystal for its structure and nearest neighbours; box or lasso (toolbar) to select "
               "several; double-click empty space to clear the selection.")


@st.cache_data(max_entries=64, show_spinner="Drawing the structure…")
def _structure(ref: DatasetRef, row: int, images: bool, bonds: bool, polyhedra: bool, cell: int,
               title: str) -> go.Figure:
    return plots_structures.structure_figure(dataset(ref).structure(row), images=images, show_bonds=bonds,
                                             polyhedra=polyhedra, supercell=(cell, cell, cell), title=title,
                                             height=VIEW_HEIGHT)


def structure_view(ref: DatasetRef, row: int, prefix: str, *, title: str = "") -> go.Figure:
    """One crystal in 3-D, large, with bonds, polyhedra, face atoms (``show``) and a supercell (``cell``) in the URL."""
    nsites = int(dataset(ref).table["nsites"].iloc[row])
    cells = [n for n in CELLS if (n, n, n) in plots_structures.supercells(nsites)]
    shown = urlstate.bind(f"{prefix}.show", "show", ["bonds", "face atoms"], codec=_SHOWN,
                          valid=lambda v: set(v) <= set(SHOW))
    st.pills("Show", SHOW, selection_mode="multi", key=f"{prefix}.show", label_visibility="collapsed")
    cell = urlstate.bind(f"{prefix}.cell", "cell", 1, codec=urlstate.INT, valid=cells)
    fig = _structure(ref, row, "face atoms" in shown, "bonds" in shown, "polyhedra" in shown, int(cell), title)
    st.plotly_chart(fig, key=f"{prefix}.structure", config={"displaylogo": False})
    st.selectbox("Supercell", cells, key=f"{prefix}.cell", label_visibility="collapsed", width=180,
                 format_func=lambda n: f"{n}×{n}×{n} cell" if n > 1 else "unit cell",
                 help=f"Repeat the cell (up to {plots_structures.MAX_SITES} sites are drawn).")
    return fig


def focus_panel(ref: DatasetRef, ex: Exploration, table: pd.DataFrame | None, encoders: Sequence[str]) -> None:
    """The clicked crystal: 3-D structure | properties, then its nearest neighbours (encoder and k) full width."""
    if ex.focus is None or table is None:
        return
    ds = dataset(ref)
    head, clear = st.columns([5, 1], vertical_alignment="bottom")
    head.subheader(f"{ds.table['formula'].iloc[ex.focus]} · {ds.ids[ex.focus]}")
    clear.button("Clear", key=f"{ex.prefix}.clear_focus", icon=":material/close:",
                 on_click=lambda: st.session_state.update({f"{ex.prefix}.focus": None}))
    left, right = st.columns([1, 1], gap="medium")
    with left:
        structure_view(ref, ex.focus, ex.prefix, title=str(ds.table["formula"].iloc[ex.focus]))
    with right:
        st.dataframe(plots_structures.crystal_properties(ds, ex.focus), hide_index=True, width="stretch",
                     height=min(VIEW_HEIGHT, 38 + 35 * (5 + len(ds.properties))),
                     column_config={"property": st.column_config.TextColumn(width="medium")})
    a, b, _ = st.columns([2, 2, 3])  # the neighbours get the full width: five columns stay readable at 1024 px
    a.selectbox("Neighbours in", list(encoders), key=f"{ex.prefix}.near",
                help="Whose full embedding the neighbours come from; a click sets the clicked map's.")
    b.slider("k", 1, min(MAX_K, len(ds) - 1), key=f"{ex.prefix}.nk")
    shown = plots_structures.neighbour_display(table)
    st.dataframe(shown[[c for c in NEIGHBOUR_COLUMNS if c in shown.columns]], hide_index=True, width="stretch",
                 column_config={"distance": st.column_config.NumberColumn(format="%.4f")})
    st.caption(f"{ex.k} nearest in the full {ex.near} embedding ({METRIC} distance, itself excluded), "
               "ringed in pink in every map.")


def selection_panel(ref: DatasetRef, ex: Exploration) -> None:
    """The box/lasso selection: a table of the crystals, exportable, and a button to clear it."""
    if not ex.selection:
        return
    ds = dataset(ref)
    head, clear = st.columns([5, 1], vertical_alignment="bottom")
    head.subheader(f"Selection: {plural(len(ex.selection), 'crystal')}")
    clear.button("Clear", key=f"{ex.prefix}.clear_sel", icon=":material/close:",
                 on_click=lambda: st.session_state.update({f"{ex.prefix}.sel": ()}))
    table = exports.selection_table(ds, ex.selection)
    st.dataframe(table, hide_index=True, width="stretch", height=min(320, 40 + 35 * len(table)))
    if len(ex.selection) >= MAX_SELECTION or len(ex.selection) > MAX_URL_ROWS:
        st.caption((f"A selection keeps at most {MAX_SELECTION:,} crystals. " if len(ex.selection) >= MAX_SELECTION
                    else "") + f"The page's link holds the first {MAX_URL_ROWS:,}; the downloads hold all of them.")
    downloads.table_downloads(table, name=f"{ds.name}-selection", key=f"{ex.prefix}.sel_download")
