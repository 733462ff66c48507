"""Presenter mode for the Lecture page: its switch, the section picker, and tables and figures sized for it.

In presenter mode one section fills the screen, tables are HTML (they wrap instead of scrolling) and
figures use projector-sized fonts (:func:`crystalrep.plots.lecture.for_projector`); otherwise tables are
data grids. The section bodies (:mod:`ui.lecture_sections`) draw through :func:`table` and :func:`chart`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from crystalrep.plots import lecture as plots_lecture
from ui import lecture as lc

if TYPE_CHECKING:
    import plotly.graph_objects as go

PERCENT = st.column_config.NumberColumn(format="%.0f%%")
THREE = st.column_config.NumberColumn(format="%.3f")


def warn(failed: dict[str, str]) -> None:
    """One warning per encoder that could not embed the dataset (``failed``: name -> reason)."""
    for reason in failed.values():
        st.warning(reason)


def table(frame: Any, *, formats: dict[str, str] | None = None, config: dict[str, Any] | None = None,
          html: bool = False) -> None:
    """A table: wrapping HTML when ``html`` or in presenter mode (``formats``: column -> format string), else a
    data grid (``config``: its column configuration)."""
    if html or lc.presenting():
        if isinstance(frame, pd.DataFrame):
            frame = frame.style.format(formats or {}, na_rep="–").hide(axis="index")
        st.table(frame)
    else:
        st.dataframe(frame, hide_index=True, width="stretch", column_config=config)


def chart(fig: go.Figure, key: str) -> None:
    """A plotly figure, with projector-sized fonts in presenter mode."""
    st.plotly_chart(plots_lecture.for_projector(fig) if lc.presenting() else fig, key=key)


def presenter_toggle() -> bool:
    """The presenter-mode switch (``?present=1`` in the link turns it on); injects its style when on."""
    from crystalrep.plots.lecture import PRESENTER_CSS

    if lc.PRESENTER not in st.session_state and st.query_params.get("present") in ("1", "true"):
        st.session_state[lc.PRESENTER] = True
    on = st.toggle("Presenter mode", key=lc.PRESENTER,
                   help="One section per screen, text at least 18 px, tables that wrap, no sidebar: for a projector.")
    if on:
        st.html(PRESENTER_CSS)
    return on


def _step(delta: int, n: int) -> None:
    st.session_state[lc.SECTION] = min(max(int(st.session_state.get(lc.SECTION, 0)) + delta, 0), n - 1)


def section_picker(titles: list[str]) -> int:
    """Previous · section · Next; returns the index of the section on screen."""
    if st.session_state.get(lc.SECTION) not in range(len(titles)):
        st.session_state[lc.SECTION] = 0
    now = int(st.session_state[lc.SECTION])
    left, mid, right = st.columns([1, 4, 1], vertical_alignment="bottom")
    left.button("Previous", key="lecture.prev", icon=":material/arrow_back:", disabled=now == 0,
                on_click=_step, args=(-1, len(titles)), width="stretch")
    mid.selectbox("Section", range(len(titles)), key=lc.SECTION, format_func=lambda i: titles[i],
                  label_visibility="collapsed")
    right.button("Next", key="lecture.next", icon=":material/arrow_forward:", disabled=now == len(titles) - 1,
                 on_click=_step, args=(1, len(titles)), width="stretch")
    return int(st.session_state[lc.SECTION])
