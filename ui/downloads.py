"""Download buttons of the map pages: a table as CSV/Parquet, a figure as offline HTML/PNG/SVG, the dataset for chemiscope.

Files are made when a button is clicked (``on_click="ignore"``: no rerun), from what is drawn or stored then.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import streamlit as st

from crystalrep import exports
from ui.cache import DatasetRef, dataset

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


def table_downloads(table: pd.DataFrame, *, name: str, key: str) -> None:
    """CSV and Parquet download buttons for a table (ids included)."""
    a, b = st.columns(2)
    for col, fmt, mime in ((a, "csv", "text/csv"), (b, "parquet", "application/vnd.apache.parquet")):
        col.download_button(f"{fmt.upper()}", exports.table_bytes(table, fmt), file_name=f"{name}.{fmt}", mime=mime,
                            icon=":material/download:", key=f"{key}.{fmt}", on_click="ignore", width="stretch")


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
