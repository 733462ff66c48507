"""Plotly figure builders and display tables; pages only render what these return.

No Streamlit here, so the builders are tested directly (AppTest cannot see inside plotly charts).
Element positions on the periodic table come from pymatviz's table (read without importing
pymatviz); its own ``ptable_heatmap`` (0.18) calls ``plotly.figure_factory.create_annotated_heatmap``,
which plotly 7 removed, so the heatmap is drawn here with plain ``go.Heatmap`` layers.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset, DatasetError, PropertyInfo

if TYPE_CHECKING:
    import plotly.graph_objects as go

TOP_CATEGORIES = 20
SEARCH_COLUMNS = ("id", "formula", "chemsys")
EMPTY_TILE = "#eef0f4"


def plural(n: int, noun: str) -> str:
    """``"1 structure"``, ``"2,500 structures"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def axis_label(info: PropertyInfo) -> str:
    """``"name (unit)"``, or just the name for dimensionless and categorical properties."""
    return f"{info.name} ({info.unit})" if info.unit else info.name


COLUMN_NAMES = {"id": "id", "formula": "formula", "chemsys": "chemical system", "spacegroup": "space group",
                "crystal_system": "crystal system", "nsites": "sites per cell", "prototype": "prototype"}


def label_name(column: str, dataset: Dataset | None = None) -> str:
    """The one display name of a table column: ``"crystal system"``, ``"density (g/cm³)"``.

    A property of ``dataset`` gets its declared name and unit (:func:`axis_label`, as in the
    sidebar); the structure columns every dataset has get the names in :data:`COLUMN_NAMES`;
    anything else has its underscores turned into spaces, so no chart or table shows
    ``crystal_system`` beside ``crystal system``.
    """
    if dataset is not None and column in dataset.properties:
        return axis_label(dataset.properties[column])
    return COLUMN_NAMES.get(column, column.replace("_", " "))


def property_info(dataset: Dataset, prop: str) -> PropertyInfo:
    """The :class:`PropertyInfo` of ``prop``; unknown names raise ``DatasetError`` listing valid ones."""
    if prop not in dataset.properties:
        valid = ", ".join(dataset.properties) or "none"
        raise DatasetError(f"dataset {dataset.name!r} has no property {prop!r}; valid: {valid}.")
    return dataset.properties[prop]


def element_counts(dataset: Dataset) -> pd.Series:
    """Number of structures containing each element, indexed by symbol, most common first."""
    from pymatgen.core.periodic_table import Element

    if len(dataset.numbers) == 0:
        return pd.Series(dtype=np.int64, name="structures")
    row = np.repeat(np.arange(len(dataset)), np.diff(dataset.offsets))
    present = np.zeros((len(dataset), int(dataset.numbers.max()) + 1), dtype=bool)
    present[row, dataset.numbers] = True  # row contains element; ~20x faster than np.unique over (row, Z) pairs
    per_z = present.sum(axis=0)
    z = np.flatnonzero(per_z)
    counts = per_z[z]
    series = pd.Series(counts.astype(np.int64), index=[Element.from_Z(int(k)).symbol for k in z], name="structures")
    return series.sort_values(ascending=False, kind="stable")


@functools.lru_cache(maxsize=1)
def _ptable() -> pd.DataFrame:
    """The element table of pymatviz (row, column, name, ... by symbol), read without importing pymatviz.

    ``import pymatviz`` costs ~10 s and ~170 MB in a fresh dashboard server (it imports scipy.stats,
    pymatgen's local_env and phonopy) for this one CSV file.
    """
    spec = importlib.util.find_spec("pymatviz")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / "elements.csv" if folders else None
    if path is None or not path.is_file():  # a pymatviz that keeps its table elsewhere
        from pymatviz import df_ptable

        return df_ptable
    return pd.read_csv(path, comment="#").set_index("symbol")


def element_counts_figure(dataset: Dataset, *, log: bool = False) -> go.Figure:
    """Periodic-table heatmap of how many structures contain each element.

    Args:
        dataset: The dataset to count.
        log: Colour by log10 of the count (the tiles and hover still show raw counts).

    Returns:
        A figure whose last trace is the count heatmap: ``z`` holds the colour value and
        ``customdata`` the raw count on each element's tile (NaN where absent).
    """
    import plotly.graph_objects as go

    df_ptable = _ptable()
    counts = element_counts(dataset)
    shape = (int(df_ptable["row"].max()), int(df_ptable["column"].max()))
    present = np.full(shape, np.nan)
    raw = np.full(shape, np.nan)
    tile_text = np.full(shape, "", dtype=object)
    count_text = np.full(shape, "", dtype=object)
    hover = np.full(shape, "", dtype=object)
    for symbol, (r, c, name) in df_ptable[["row", "column", "name"]].iterrows():
        i, j = int(r) - 1, int(c) - 1
        n = int(counts.get(symbol, 0))
        present[i, j] = 1.0
        tile_text[i, j] = symbol if n == 0 else ""
        hover[i, j] = f"{name} ({symbol}): {plural(n, 'structure')}"
        if n:
            raw[i, j] = n
            count_text[i, j] = f"<b>{symbol}</b><br>{n}"
    top = max(float(np.nanmax(raw)) if len(counts) else 1.0, 1.0)
    if log:
        ticks = [v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if v <= top] or [1]
        color, zmax = np.log10(raw), max(np.log10(top), 1e-9)
        colorbar = {"tickvals": np.log10(ticks).tolist(), "ticktext": [f"{v:,}" for v in ticks]}
    else:
        color, zmax = raw, top
        colorbar = {"dtick": 1} if top <= 10 else {}
    colorbar |= {"title": {"text": "structures (log scale)" if log else "structures", "side": "right"},
                 "thickness": 12, "len": 0.8}
    tiles = go.Heatmap(z=present, text=tile_text, texttemplate="%{text}", textfont={"color": "#9aa0aa", "size": 12},
                       colorscale=[[0, EMPTY_TILE], [1, EMPTY_TILE]], showscale=False, hoverinfo="skip", xgap=2, ygap=2)
    heat = go.Heatmap(z=color, customdata=raw, text=count_text, texttemplate="%{text}", textfont={"size": 12},
                      hovertext=hover, hoverinfo="text", colorscale="Viridis", zmin=0, zmax=zmax, xgap=2, ygap=2,
                      colorbar=colorbar)
    fig = go.Figure([tiles, heat])
    # no scaleanchor: tiles stretch to fill the column instead of leaving a band of white space
    fig.update_xaxes(visible=False, range=[-0.5, shape[1] - 0.5])
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(margin={"l": 0, "r": 0, "t": 30, "b": 0}, height=400, plot_bgcolor="rgba(0,0,0,0)",
                      title={"text": f"Elements in {plural(len(dataset), 'structure')} ({plural(len(counts), 'element')})",
                             "font": {"size": 14}})
    return fig


def property_histogram(dataset: Dataset, prop: str, *, bins: int = 40) -> go.Figure:
    """Histogram of a numeric property (unit on the axis), or a bar chart of the top categories.

    Args:
        dataset: The dataset holding the column.
        prop: A name from ``dataset.properties``.
        bins: Upper bound on the number of histogram bins.

    Returns:
        A one-trace figure: ``x`` is the non-missing column (numeric) or the top category names.
    """
    import plotly.graph_objects as go

    info = property_info(dataset, prop)
    column = dataset.table[prop]
    if info.kind == "numeric":
        values = pd.to_numeric(column, errors="coerce").dropna()
        trace = go.Histogram(x=values.to_numpy(), nbinsx=bins, marker={"color": "#3b6ea8"}, name=prop)
        title = f"{prop}<br><sup>{len(values):,} of {plural(len(column), 'structure')} have a value</sup>"
        y_title = "structures"
    else:
        counts = column.dropna().astype(str).value_counts()
        top = counts.head(TOP_CATEGORIES)
        trace = go.Bar(x=top.index.tolist(), y=top.to_numpy(), marker={"color": "#3b6ea8"}, name=prop)
        shown = f"top {len(top)} of {len(counts)}" if len(counts) > len(top) else f"all {len(counts)}"
        title = f"{prop}: {shown} categories"
        y_title = "structures"
    fig = go.Figure(trace)
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=400, bargap=0.05,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False)
    fig.update_xaxes(title_text=axis_label(info))
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    if len(column.dropna()) <= 10:  # whole-number ticks: plotly would label 0.5 structures
        fig.update_yaxes(dtick=1)
    return fig


def property_summary(dataset: Dataset, prop: str) -> str:
    """One line describing a property: description, unit and the spread of its values."""
    info = property_info(dataset, prop)
    column = dataset.table[prop]
    head = f"**{info.name}**" + (f" ({info.unit})" if info.unit else "") + (f" — {info.description.rstrip('.')}" if info.description else "")
    if info.kind == "numeric":
        values = pd.to_numeric(column, errors="coerce").dropna()
        if len(values) == 0:
            return f"{head}. No values."
        return (f"{head}. n = {len(values)}, median {values.median():.4g}, "
                f"range {values.min():.4g} to {values.max():.4g}.")
    return f"{head}. n = {int(column.notna().sum())}, {column.nunique()} distinct values."


def display_table(dataset: Dataset, *, query: str = "") -> pd.DataFrame:
    """The dataset table for display, filtered to rows whose id, formula or chemsys contain ``query``.

    The match is case-insensitive and literal (no regular expressions); an empty query keeps all rows.
    """
    table = dataset.table
    query = query.strip()
    if query:
        mask = np.zeros(len(table), dtype=bool)
        for col in SEARCH_COLUMNS:
            mask |= table[col].astype(str).str.contains(query, case=False, regex=False).to_numpy()
        table = table[mask]
    return table.reset_index(drop=True)
