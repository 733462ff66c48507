"""Linked exploration of a page's maps: click, box/lasso and search highlight crystals in every map.

A click on any point names one crystal (the *focus*): its 3-D structure, its properties and its
k nearest neighbours in the full embedding (:mod:`crystalrep.analysis.retrieval`, via
:mod:`ui.retrieval`), which every map then rings. A box or lasso names a *selection*: a table,
ringed in every map, downloadable as CSV or Parquet with ids. A search by element, formula or id
rings its matches. All of it is in the URL (:mod:`ui.urlstate`): ``focus``, ``near``, ``nk``,
``sel``, ``q`` and the 3-D view's ``show`` and ``cell``. Keys are ``<prefix>.<name>``, one prefix per page.
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
from ui import retrieval as rv
from ui import urlstate
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
    n, ids = len(ds), ds.ids
    if focus_key is None:
        focus = urlstate.bind(f"{prefix}.focus", "focus", None, codec=urlstate.row_codec(ids),
                              valid=lambda v: v is None or 0 <= v < n)
    else:
        focus = st.session_state.get(focus_key)
    near, k = None, 0
    if neighbours:
        near = urlstate.bind(f"{prefix}.near", "near", encoders[0] if encoders else None, valid=list(encoders))
        k = urlstate.bind(f"{prefix}.nk", "nk", min(5, n - 1), codec=urlstate.INT,
                          valid=range(1, min(MAX_K, n - 1) + 1))
    selection = urlstate.bind(f"{prefix}.sel", "sel", (), codec=urlstate.rows_codec(ids),
                              valid=lambda v: all(0 <= r < n for r in v))
    query = urlstate.bind(f"{prefix}.q", "q", "")
    st.text_input("Find crystals", key=f"{prefix}.q", placeholder="element, formula or id: Ba O, TiO2, aflow-A12B",
                  help="Every word must match: an element symbol (crystals containing it), a formula or part of "
                       "an id. Matches are ringed in blue in every map.")
    hits = tuple(int(r) for r in plots_structures.search_rows(ds, query)) if query.strip() else ()
    if query.strip():
        st.caption(f"{plural(len(hits), 'crystal')} match “{query.strip()}”" + (", ringed in blue." if hits else "."))
    return Exploration(prefix, focus, near, int(k), tuple(selection), hits, query)


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
        st.session_state[f"{prefix}.sel"] = tuple(sorted(set(rows)))
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


def table_downloads(table: pd.DataFrame, *, name: str, key: str) -> None:
    """CSV and Parquet download buttons for a table (ids included)."""
    a, b = st.columns(2)
    for col, fmt, mime in ((a, "csv", "text/csv"), (b, "parquet", "application/vnd.apache.parquet")):
        col.download_button(f"{fmt.upper()}", exports.table_bytes(table, fmt), file_name=f"{name}.{fmt}", mime=mime,
                            icon=":material/download:", key=f"{key}.{fmt}", on_click="ignore", width="stretch")


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
    table_downloads(table, name=f"{ds.name}-selection", key=f"{ex.prefix}.sel_download")


def figure_downloads(fig: go.Figure, *, name: str, key: str) -> None:
    """One "Export" popover: the figure as offline HTML, PNG (2× for slides) and SVG (rendered by kaleido)."""
    browser = exports.browser_path()
    with st.popover("Export figure", icon=":material/ios_share:"):
        st.download_button("Interactive HTML (opens offline)", lambda: exports.figure_html(fig, title=name),
                           file_name=f"{name}.html", mime="text/html", key=f"{key}.html", on_click="ignore",
                           width="stretch")
        for fmt, mime in (("png", "image/png"), ("svg", "image/svg+xml")):
            st.download_button(f"{fmt.upper()} for slides", functools.partial(exports.figure_image, fig, fmt=fmt),
                               file_name=f"{name}.{fmt}", mime=mime, key=f"{key}.{fmt}", on_click="ignore",
                               width="stretch", disabled=browser is None,
                               help=None if browser else "Needs Chromium (set BROWSER_PATH).")
        st.caption("Images take a few seconds: a headless Chromium draws them.")


def chemiscope_download(ref: DatasetRef, *, key: str) -> None:
    """A button for the dataset as a chemiscope file: structures, properties, every stored projection.

    The file is made when clicked (a few seconds for 2,000 crystals), from the store as it is then.
    """
    ds = dataset(ref)
    st.download_button("chemiscope dataset", lambda: exports.chemiscope_bytes(ds),
                       file_name=f"{ref.name}.chemiscope.json.gz", mime="application/gzip",
                       icon=":material/download:", key=key, on_click="ignore",
                       help="Structures, properties and every stored map of this dataset, for chemiscope.org or "
                            "chemiscope.show_input (gzip JSON).")
