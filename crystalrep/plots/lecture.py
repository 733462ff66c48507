"""Figures and styled tables of the Lecture page (no Streamlit here; tested directly)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from pandas.io.formats.style import Styler

__all__ = ["CLIP_PERCENTILES", "PRESENTER_CSS", "for_projector", "hover_text", "invariance_frame",
           "invariance_styler", "map_pair_figure", "r2_bars", "study_figure", "study_frame"]

CLIP_PERCENTILES = (2.0, 98.0)
PASS, FAIL = "background-color: #c8e6c9", "background-color: #ffcdd2"
MISSING = "#c4c4c4"
PROJECTOR_FONT = 18  # px: the smallest text a back row reads off a 1024×768 projector
# Presenter mode: no sidebar (the slide gets the whole width), every text at least PROJECTOR_FONT px,
# tables as wrapping HTML (st.table) instead of a scrolling canvas.
PRESENTER_CSS = f"""<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"] {{display: none;}}
[data-testid="stMainBlockContainer"] {{max-width: 100%; padding: 1rem 1.5rem 3rem 1.5rem;}}
[data-testid="stMain"] {{font-size: {PROJECTOR_FONT + 2}px;}}
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label, [data-testid="stMain"] td,
[data-testid="stMain"] th, [data-testid="stMain"] button, [data-testid="stMain"] input,
[data-testid="stMain"] [data-baseweb="select"] div, [data-testid="stMain"] code,
[data-testid="stMain"] summary span {{font-size: {PROJECTOR_FONT + 2}px;}}
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p {{font-size: {PROJECTOR_FONT}px;}}
[data-testid="stMain"] [data-testid="stMetricValue"],
[data-testid="stMain"] [data-testid="stMetricValue"] p {{font-size: {2 * PROJECTOR_FONT}px;}}
[data-testid="stMain"] h1 {{font-size: {2 * PROJECTOR_FONT + 4}px;}}
[data-testid="stMain"] h2 {{font-size: {2 * PROJECTOR_FONT - 4}px;}}
[data-testid="stTable"] td, [data-testid="stTable"] th {{white-space: normal; padding: 0.3rem 0.5rem;}}
</style>"""


def _ordered(result: dict[str, Any]) -> list[str]:
    from crystalrep.analysis.diagnostics import TRANSFORMS

    names = list(result["transforms"])
    return [t for t in TRANSFORMS if t in names] + [t for t in names if t not in TRANSFORMS]


def invariance_frame(results: Mapping[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per encoder and one text column per transform: ``"<max> / <median>"`` relative change."""
    rows = []
    for name, result in results.items():
        row: dict[str, Any] = {"encoder": name}
        for transform in _ordered(result):
            score = result["transforms"][transform]
            row[transform] = f"{score['max']:.1e} / {score['median']:.1e}"
        rows.append(row)
    return pd.DataFrame(rows)


def invariance_styler(results: Mapping[str, dict[str, Any]]) -> Styler:
    """:func:`invariance_frame`, green where a should-be-invariant transform's max is below the tolerance, red above.

    Thermal noise (a different crystal) is left uncoloured: it is expected to move the embedding.
    """
    frame = invariance_frame(results)
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for i, result in enumerate(results.values()):
        for transform, score in result["transforms"].items():
            if score["expected_invariant"]:
                styles.loc[i, transform] = PASS if score["max"] < result["tolerance"] else FAIL
    return frame.style.apply(lambda _: styles, axis=None).hide(axis="index")


def _clip(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, CLIP_PERCENTILES)
    return float(lo), float(hi if hi > lo else lo + 1.0)


def map_pair_figure(coords: Sequence[np.ndarray], values: np.ndarray, *, titles: Sequence[str], colour_label: str,
                    hover: Sequence[str]) -> go.Figure:
    """Two (or more) 2-D maps side by side, coloured by one property on a shared, clipped scale.

    Args:
        coords: One ``[n, 2]`` array per panel (same rows).
        values: Colour value per row; NaN rows are drawn grey.
        titles: Panel titles.
        colour_label: Colour bar title.
        hover: Hover text per row.

    Returns:
        A figure with, per panel, a ``scattergl`` trace of the labelled rows (``marker.color`` =
        their values, limits at the 2nd–98th percentiles) and one of the unlabelled rows.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    values = np.asarray(values, dtype=np.float64)
    hover_rows = np.asarray(hover, dtype=object)
    has = np.isfinite(values)
    lo, hi = _clip(values)
    fig = make_subplots(rows=1, cols=len(coords), subplot_titles=list(titles), horizontal_spacing=0.06)
    for k, xy in enumerate(coords):
        xy = np.asarray(xy)
        fig.add_trace(go.Scattergl(
            x=xy[has, 0], y=xy[has, 1], mode="markers", text=hover_rows[has], hoverinfo="text", showlegend=False,
            marker={"color": values[has], "coloraxis": "coloraxis", "size": 5},
        ), row=1, col=k + 1)
        fig.add_trace(go.Scattergl(
            x=xy[~has, 0], y=xy[~has, 1], mode="markers", text=hover_rows[~has], hoverinfo="text",
            name="no value", showlegend=bool(k == 0 and (~has).any()), marker={"color": MISSING, "size": 4},
        ), row=1, col=k + 1)
        fig.update_xaxes(showticklabels=False, row=1, col=k + 1)
        fig.update_yaxes(showticklabels=False, row=1, col=k + 1)
    fig.update_layout(coloraxis={"colorscale": "Viridis", "cmin": lo, "cmax": hi,
                                 "colorbar": {"title": {"text": colour_label, "side": "right"}}},
                      height=440, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h"})
    return fig


def hover_text(table: pd.DataFrame, prop: str) -> list[str]:
    """``"id · formula · property value"`` per row, for map hover text."""
    values = pd.to_numeric(table[prop], errors="coerce")
    return [f"{i} · {f} · {prop} {v:.3g}" for i, f, v in zip(table["id"], table["formula"], values, strict=True)]


def r2_bars(frame: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Probe R² (mean ± std over folds) per embedding, from a frame with ``embedding``, ``r2_mean``, ``r2_std``.

    Each bar has its encoder's colour (:func:`crystalrep.plots.style.encoder_colour`), as in every chart.
    """
    import plotly.graph_objects as go

    from crystalrep.plots.style import encoder_colour

    fig = go.Figure(go.Bar(
        x=frame["embedding"], y=frame["r2_mean"], error_y={"type": "data", "array": frame["r2_std"]},
        text=[f"{v:.2f}" for v in frame["r2_mean"]], textposition="inside", insidetextanchor="start",
        marker_color=[encoder_colour(str(name)) for name in frame["embedding"]],
        hovertemplate="%{x}: R² %{y:.3f}<extra></extra>",
    ))
    fig.add_hline(y=0, line_color="#666", line_width=1)
    top = float(np.nanmax((frame["r2_mean"] + frame["r2_std"]).to_numpy(dtype=float), initial=0.0))
    fig.update_layout(title=title, yaxis={"title": "probe R² (grouped split)", "range": [min(-0.1, float(
        np.nanmin(frame["r2_mean"].to_numpy(dtype=float), initial=0.0)) - 0.1), max(1.05, top + 0.1)]},
        height=360, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10})
    return fig


def for_projector(fig: go.Figure, *, height: int = 520) -> go.Figure:
    """The same figure with every text at least :data:`PROJECTOR_FONT` px and room for it (a copy)."""
    import plotly.graph_objects as go

    out = go.Figure(fig)
    out.update_layout(font={"size": PROJECTOR_FONT}, height=height, legend={"font": {"size": PROJECTOR_FONT}},
                      hoverlabel={"font": {"size": PROJECTOR_FONT}})
    if out.layout.coloraxis.colorbar is not None:  # a colour bar's ticks and title do not follow layout.font
        out.update_coloraxes(colorbar={"tickfont": {"size": PROJECTOR_FONT},
                                       "title": {"font": {"size": PROJECTOR_FONT}}})
    out.update_xaxes(tickfont_size=PROJECTOR_FONT, title_font_size=PROJECTOR_FONT)
    out.update_yaxes(tickfont_size=PROJECTOR_FONT, title_font_size=PROJECTOR_FONT)
    out.update_annotations(font_size=PROJECTOR_FONT + 2)  # subplot titles are annotations
    if out.layout.title.text:  # a larger title needs a taller top margin, or its top is cut off
        top = out.layout.margin.t if out.layout.margin.t is not None else 0
        out.update_layout(title_font_size=PROJECTOR_FONT + 4, margin_t=max(top, 3 * PROJECTOR_FONT))
    out.update_traces(textfont_size=PROJECTOR_FONT, selector={"type": "bar"})
    return out


_INIT_COLOURS = {"random": "#7f7f7f", "denoise": "#1f77b4", "contrastive": "#d62728", "masking": "#2ca02c"}
_SIZE_ORDER = 10**9  # N = 0 stands for "all" training rows: sorted last


def _size(n: int) -> str:
    return "all" if int(n) == 0 else str(int(n))


def study_frame(table: Sequence[Mapping[str, Any]], prop: str, inits: Sequence[str]) -> pd.DataFrame:
    """One property's study results as text: a row per (evaluation, backbone, split, N), ``mean ± std`` MAE per init.

    Args:
        table: The report's ``table`` records (``property``, ``evaluation``, ``backbone``, ``split``,
            ``n`` with 0 = all, ``init``, ``mae_mean``, ``mae_std``).
        prop: The property label to show.
        inits: Column order, random init first.
    """
    from crystalrep.plots.probes import pm

    rows = [r for r in table if r["property"] == prop]
    keys = sorted({(r["evaluation"], r["backbone"], r["split"], int(r["n"])) for r in rows},
                  key=lambda k: (k[0], k[1], k[2], k[3] or _SIZE_ORDER))
    out = []
    for key in keys:
        cells = {r["init"]: pm(float(r["mae_mean"]), float(r["mae_std"]), 3) for r in rows
                 if (r["evaluation"], r["backbone"], r["split"], int(r["n"])) == key}
        out.append({"evaluation": key[0], "backbone": key[1], "split": key[2], "N": _size(key[3]),
                    **{init: cells.get(init, "—") for init in inits}})
    return pd.DataFrame(out, columns=["evaluation", "backbone", "split", "N", *inits])


def study_figure(table: Sequence[Mapping[str, Any]], prop: str, *, unit: str = "") -> go.Figure:
    """Test MAE against training labels N for one property, mean ± std over seeds × folds.

    One panel per (evaluation, split); a line per init (colour) and backbone (solid: mean pooling,
    dashed: the others); N on a categorical axis (50, 200, 1000, all).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in table if r["property"] == prop]
    panels = sorted({(r["evaluation"], r["split"]) for r in rows})
    sizes = [_size(n) for n in sorted({int(r["n"]) for r in rows}, key=lambda n: n or _SIZE_ORDER)]
    fig = make_subplots(rows=1, cols=max(1, len(panels)), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"{e} · {s} split" for e, s in panels] or [""])
    lines = sorted({(r["init"], r["backbone"]) for r in rows}, key=lambda k: (k[0] != "random", k))
    for col, (evaluation, split) in enumerate(panels, start=1):
        for init, backbone in lines:
            mine = sorted((r for r in rows if (r["evaluation"], r["split"], r["init"], r["backbone"])
                           == (evaluation, split, init, backbone)), key=lambda r: int(r["n"]) or _SIZE_ORDER)
            if not mine:
                continue
            fig.add_trace(go.Scatter(
                x=[_size(r["n"]) for r in mine], y=[r["mae_mean"] for r in mine], mode="lines+markers",
                error_y={"type": "data", "array": [r["mae_std"] for r in mine]}, name=f"{init} · {backbone}",
                legendgroup=f"{init}{backbone}", showlegend=col == 1,
                line={"color": _INIT_COLOURS.get(init, "#9467bd"), "dash": "solid" if backbone == "mean" else "dash"},
                hovertemplate=f"{init} · {backbone}<br>N %{{x}}: MAE %{{y:.4g}}<extra></extra>",
            ), row=1, col=col)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=sizes, title_text="training labels N",
                         row=1, col=col)
    fig.update_yaxes(title_text=f"test MAE ({unit})" if unit else "test MAE", row=1, col=1)
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig
