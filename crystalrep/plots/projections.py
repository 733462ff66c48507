"""Figures of 2-D maps: colouring by a property, WebGL scatter panels, the static sweep grid.

No Streamlit and no analysis imports here (pages pass results in). The colour of every point
comes from one :class:`Colouring`, whose ``caption`` states the scale and clipping, so a panel
and its sweep grid can never disagree about what a colour means. All points are always drawn.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset
from crystalrep.plots.data import axis_label, plural, property_info

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.analysis.map_quality import MapScores
    from crystalrep.analysis.projections import Projection
    from crystalrep.analysis.sweeps import SweepResult

METHOD_NAMES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
STRUCTURE_COLUMNS = {"crystal_system": ("categorical", "crystal system"), "spacegroup": ("categorical", "space group"),
                     "nsites": ("numeric", "sites per cell")}
TOP = 10  # categories with their own colour; the rest are "other"
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF",
           "#FECB52")  # plotly's qualitative "Plotly", so the PNG grid matches the live charts
OTHER, MISSING = "#9aa0aa", "#d5d8de"
COLORSCALE = "Viridis"


def colour_options(dataset: Dataset) -> dict[str, str]:
    """Columns a map can be coloured by -> ``"numeric"`` or ``"categorical"``: properties first."""
    out = {p: info.kind for p, info in dataset.properties.items()}
    out.update({c: kind for c, (kind, _) in STRUCTURE_COLUMNS.items() if c in dataset.table and c not in out})
    return out


def column_label(dataset: Dataset, column: str) -> str:
    """``"density (g/cm³)"`` for a property, ``"space group"`` for a structure column."""
    if column in dataset.properties:
        return axis_label(property_info(dataset, column))
    if column in STRUCTURE_COLUMNS:
        return STRUCTURE_COLUMNS[column][1]
    raise ValueError(f"cannot colour by {column!r}; valid: {', '.join(colour_options(dataset))}.")


@dataclass(frozen=True, eq=False)
class Colouring:
    """What each point's colour means.

    Attributes:
        column: Table column.
        label: Column label with unit.
        kind: ``"numeric"`` or ``"categorical"``.
        values: Numeric: colour value per row (log10 when ``scale == "log"``, clipped to
            ``[lo, hi]``), NaN where the row has no colour. Categorical: the legend entry per row
            (a category, ``"other"`` or ``"no value"``).
        text: The row's raw value for hover.
        scale: ``"linear"`` or ``"log"`` (numeric only).
        clip: Percent clipped at each end (numeric only).
        lo: Lower end of the colour range (in colour units).
        hi: Upper end.
        categories: Legend order (categorical).
        uncoloured: Rows drawn grey (no value; or a value <= 0 on a log scale).
        caption: One sentence stating column, scale, clipping and uncoloured rows.
    """

    column: str
    label: str
    kind: str
    values: np.ndarray
    text: list[str]
    scale: str = "linear"
    clip: float = 0.0
    lo: float = float("nan")
    hi: float = float("nan")
    categories: list[str] = field(default_factory=list)
    uncoloured: int = 0
    caption: str = ""

    def colour_of(self, category: str) -> str:
        """Hex colour of a legend entry (categorical)."""
        if category == "no value":
            return MISSING
        if category == "other":
            return OTHER
        return PALETTE[self.categories.index(category) % len(PALETTE)]


def colouring(dataset: Dataset, column: str, *, log: bool = False, clip: float = 0.0) -> Colouring:
    """Colour values of ``column`` for every row.

    Args:
        dataset: The dataset whose rows are the points.
        column: A key of :func:`colour_options`.
        log: Colour by log10 of a numeric column (values <= 0 are drawn grey).
        clip: Percent of the (finite, log-transformed if ``log``) values clipped at each end,
            ``0 <= clip < 50``.

    Raises:
        ValueError: Unknown column or a clip outside ``[0, 50)``.
    """
    kind = colour_options(dataset).get(column)
    label = column_label(dataset, column)
    if kind is None:
        raise ValueError(f"cannot colour by {column!r}; valid: {', '.join(colour_options(dataset))}.")
    if not 0 <= clip < 50:
        raise ValueError(f"clip must be a percentage in [0, 50), got {clip!r}.")
    raw = dataset.table[column]
    if kind == "categorical":
        return _categorical(raw, column, label)
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    text = [f"{v:.4g}" if math.isfinite(v) else "no value" for v in numbers]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(numbers > 0, np.log10(numbers), np.nan) if log else numbers.copy()
    finite = np.isfinite(values)
    lo, hi = (np.percentile(values[finite], [clip, 100 - clip]) if finite.any() else (np.nan, np.nan))
    values = np.where(finite, np.clip(values, lo, hi), np.nan)
    shown = f"{label}, {'log10' if log else 'linear'} scale"
    unit = "log10 " if log else ""
    if clip > 0:
        shown += f", clipped to the {clip:g}th–{100 - clip:g}th percentile ({unit}{lo:.3g} to {hi:.3g})"
    else:
        shown += f", full range ({unit}{lo:.3g} to {hi:.3g})" if finite.any() else ", no values"
    grey = int((~finite).sum())
    if grey:
        why = "no value or ≤ 0 on a log scale" if log else "no value"
        shown += f"; {plural(grey, 'crystal')} drawn grey ({why})"
    return Colouring(column, label, "numeric", values, text, "log" if log else "linear", float(clip), float(lo),
                     float(hi), uncoloured=grey, caption=f"Colour: {shown}.")


def _categorical(raw: pd.Series, column: str, label: str) -> Colouring:
    present = raw.notna().to_numpy()
    names = raw.astype(str).where(raw.notna(), "no value")
    counts = names[present].value_counts(sort=True)
    top = counts.index[:TOP].tolist()
    entries = np.where(names.isin(top), names, np.where(present, "other", "no value"))
    cats = top + [c for c in ("other", "no value") if (entries == c).any()]
    shown = f"all {len(counts)}" if len(counts) <= TOP else f"top {TOP} of {len(counts)} (the rest grey as “other”)"
    caption = f"Colour: {label}, categorical, {shown} categories"
    missing = int((~present).sum())
    caption += f"; {plural(missing, 'crystal')} without a value drawn light grey." if missing else "."
    return Colouring(column, label, "categorical", entries.astype(object), names.tolist(), categories=cats,
                     uncoloured=missing, caption=caption)


def _hover(dataset: Dataset, colour: Colouring) -> tuple[np.ndarray, str]:
    table = dataset.table
    custom = np.stack([table["id"].astype(str), table["formula"].astype(str), table["spacegroup"].astype(str),
                       np.asarray(colour.text, dtype=object)], axis=1)
    template = ("<b>%{customdata[1]}</b> · %{customdata[0]}<br>space group %{customdata[2]}<br>"
                f"{colour.label}: %{{customdata[3]}}<extra></extra>")
    return custom, template


def axis_titles(method: str) -> tuple[str, str]:
    """``("PC1", "PC2")`` for PCA, ``("UMAP 1", "UMAP 2")`` and so on."""
    if method == "pca":
        return "PC1", "PC2"
    name = METHOD_NAMES.get(method, method)
    return f"{name} 1", f"{name} 2"


def map_figure(coords: np.ndarray, dataset: Dataset, colour: Colouring, *, title: str, method: str,
               point_size: float = 5.0, height: int = 460) -> go.Figure:
    """A WebGL scatter of one map, every point drawn.

    Numeric colours are one ``Scattergl`` trace (``marker.color`` = :attr:`Colouring.values`,
    ``cmin``/``cmax`` = its range) plus a grey trace for uncoloured rows; categorical colours are
    one trace per legend entry. Hover shows id, formula, space group and the colour's value.
    """
    import plotly.graph_objects as go

    coords = np.asarray(coords)
    if len(coords) != len(dataset):
        raise ValueError(f"{len(coords)} map points for {len(dataset)} crystals.")
    custom, template = _hover(dataset, colour)
    traces = []
    if colour.kind == "numeric":
        ok = np.isfinite(colour.values)
        # a horizontal bar below keeps side-by-side panels as wide and as tall as each other
        bar = {"title": {"text": ("log10 " if colour.scale == "log" else "") + colour.label, "side": "top"},
               "orientation": "h", "thickness": 10, "len": 0.9, "y": -0.16, "yanchor": "top"}
        span = {"cmin": colour.lo, "cmax": colour.hi} if ok.any() else {}
        if (~ok).any():
            traces.append(go.Scattergl(x=coords[~ok, 0], y=coords[~ok, 1], mode="markers", name="no colour",
                                       marker={"size": point_size, "color": MISSING}, customdata=custom[~ok],
                                       hovertemplate=template, showlegend=False))
        traces.append(go.Scattergl(x=coords[ok, 0], y=coords[ok, 1], mode="markers", name=colour.label,
                                   marker={"size": point_size, "color": colour.values[ok], "colorscale": COLORSCALE,
                                           **span, "colorbar": bar, "showscale": bool(ok.any())},
                                   customdata=custom[ok], hovertemplate=template, showlegend=False))
    else:
        for cat in colour.categories:
            rows = colour.values == cat
            traces.append(go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=cat,
                                       marker={"size": point_size, "color": colour.colour_of(cat)},
                                       customdata=custom[rows], hovertemplate=template))
    fig = go.Figure(traces)
    x_title, y_title = axis_titles(method)
    fig.update_xaxes(title_text=x_title, showticklabels=method == "pca", zeroline=False)
    # equal axes for PCA, whose axes are embedding units; UMAP/t-SNE axes have no units to keep
    fig.update_yaxes(title_text=y_title, showticklabels=method == "pca", zeroline=False,
                     scaleanchor="x" if method == "pca" else None)
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=height,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, plot_bgcolor="#fafbfc",
                      legend={"orientation": "h", "y": -0.16, "yanchor": "top", "font": {"size": 10}, "itemsizing": "constant"})
    return fig


def _params_text(params: Mapping[str, Any], shown: tuple[str, ...] | None = None) -> str:
    items = [(k, v) for k, v in params.items() if shown is None or k in shown]
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in items) or "no parameters"


MAIN_PARAMS = {"pca": (), "umap": ("n_neighbors", "min_dist"), "tsne": ("perplexity",)}
LIBRARY = {"pca": "scikit-learn", "umap": "umap-learn", "tsne": "openTSNE"}


def panel_caption(projection: Projection, scores: MapScores) -> str:
    """Method, main parameters, seed, library version, time, trustworthiness and separation."""
    method = projection.method
    lib = LIBRARY.get(method, "")
    version = projection.versions.get(lib, "unknown")
    params = _params_text(projection.params, MAIN_PARAMS.get(method))
    seconds = f"{projection.seconds:.2f} s" + (" (read from the store)" if projection.from_cache else "")
    trust = (f"trustworthiness {scores.trustworthiness:.3f} (k={scores.k}"
             + (f", {scores.sample_size:,} of {scores.n:,} rows)" if scores.sample_size < scores.n else ")"))
    if scores.label is None:
        sep = "separation: needs a categorical colour"
    elif math.isnan(scores.separation):
        sep = f"separation by {scores.label}: undefined (fewer than 2 classes)"
    else:
        sep = f"separation by {scores.label} {scores.separation:.3f} (silhouette)"
    return (f"**{METHOD_NAMES.get(method, method)}** · {params} · seed {projection.seed} · {lib} {version} · "
            f"{seconds} · {trust} · {sep}")


def coordinates_table(dataset: Dataset, maps: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """id, formula, then ``<map> x`` and ``<map> y`` for every map, one row per crystal."""
    out = dataset.table[["id", "formula"]].copy()
    for name, coords in maps.items():
        out[f"{name} x"] = np.asarray(coords)[:, 0]
        out[f"{name} y"] = np.asarray(coords)[:, 1]
    return out.reset_index(drop=True)


def sweep_grid_png(result: SweepResult, colour: Colouring, *, title: str, point_size: float = 5.0,
                   dpi: int = 110) -> bytes:
    """The sweep's aligned layouts as small multiples in one static PNG (matplotlib).

    Rows are seeds, columns are grid cells. Layouts arrive Procrustes-aligned to the reference
    (cell 0, first seed), so orientations match; each panel is then zoomed to its own points
    (equal aspect), because the least-squares fit shrinks layouts that agree poorly with the
    reference, which would otherwise shrink them to a speck. Under each panel: that run's
    trustworthiness and its cell's seed stability (mean Procrustes disparity).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result.runs.set_index(["cell", "seed"])
    n_rows, n_cols = len(result.seeds), len(result.cells)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols + 0.6, 2.7 * n_rows + 1.0), squeeze=False,
                             dpi=dpi)
    grid_names = [c for c in result.table.columns if c in result.cells[0]]
    size = (0.55 * point_size) ** 2
    for c, cell in enumerate(result.cells):
        stability = result.table.loc[c, "stability"]
        for r, seed in enumerate(result.seeds):
            ax, xy = axes[r, c], result.coords[c, seed]
            _scatter(ax, xy, colour, size)
            trust = runs.loc[(c, seed), "trustworthiness"]
            stab = "n/a" if math.isnan(stability) else f"{stability:.3f}"
            ax.set_xlabel(f"trust {trust:.3f} · stability {stab}", fontsize=8)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(_params_text({g: cell[g] for g in grid_names}), fontsize=9)
            if c == 0:
                ax.set_ylabel(f"seed {seed}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    if colour.kind == "categorical":
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour.colour_of(cat), label=cat)
                   for cat in colour.categories]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    elif math.isfinite(colour.lo):
        fig.tight_layout(rect=(0, 0, 0.92, 0.97))
        mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(colour.lo, colour.hi))
        bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
        bar.set_label(("log10 " if colour.scale == "log" else "") + colour.label, fontsize=8)
    else:
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _scatter(ax: Any, xy: np.ndarray, colour: Colouring, size: float) -> None:
    if colour.kind == "numeric":
        ok = np.isfinite(colour.values)
        ax.scatter(xy[~ok, 0], xy[~ok, 1], s=size, c=MISSING, linewidths=0, rasterized=True)
        ax.scatter(xy[ok, 0], xy[ok, 1], s=size, c=colour.values[ok], cmap="viridis", vmin=colour.lo,
                   vmax=colour.hi, linewidths=0, rasterized=True)
        return
    for cat in colour.categories:
        rows = colour.values == cat
        ax.scatter(xy[rows, 0], xy[rows, 1], s=size, c=colour.colour_of(cat), linewidths=0, rasterized=True)
