"""One look for every chart: palettes, the encoder -> colour table, point colouring, highlights, titles.

No Streamlit here. Every figure builder takes its colours from this module, so an encoder, a
category or a highlighted crystal has the same colour in every chart (and in the static PNGs).
The colour of each map point comes from one :class:`Colouring`, whose ``caption`` states the
scale and clipping, so a live map and its sweep grid can never disagree about what a colour means.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset
from crystalrep.plots.data import COLUMN_NAMES, label_name, plural

if TYPE_CHECKING:
    import plotly.graph_objects as go

PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF",
           "#FECB52")  # plotly's qualitative "Plotly", so the PNG grid matches the live charts
CLUSTER_PALETTE = PALETTE + ("#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B",
                             "#511CFB", "#00A08B")  # plus plotly's "Dark24" head: 20 distinct cluster colours
OTHER, MISSING, NOISE = "#9aa0aa", "#d5d8de", "#c3c7cf"
COLORSCALE = "Viridis"
TOP = 10  # categories with their own colour; the rest are "other"

# Okabe-Ito colours (colour-blind safe); random init is grey, a baseline rather than a contender.
ENCODER_COLOURS = {"cgcnn-random": "#7f7f7f", "magpie": "#E69F00", "soap": "#56B4E9", "chgnet": "#009E73",
                   "sevennet": "#CC79A7"}
PRETRAINED_COLOURS = ("#D55E00", "#0072B2", "#882255", "#117733", "#332288", "#AA4499")
HIGHLIGHT = {  # marker style of each highlight layer, drawn over the map in this order
    "selection": {"color": "rgba(0,0,0,0)", "line": {"color": "#1b1f24", "width": 1.5}},
    "search": {"color": "#0a84ff", "symbol": "diamond-open", "line": {"width": 2}},  # open: colour = outline
    "neighbours": {"color": "rgba(0,0,0,0)", "line": {"color": "#e4007c", "width": 2.5}},
    "focus": {"color": "#e4007c", "symbol": "star", "line": {"color": "#ffffff", "width": 1.5}},
}
MODEBAR_CLEARANCE = 34  # px at the top of a figure left to plotly's toolbar, which would cover a title there


def encoder_colour(name: str) -> str:
    """The colour of an encoder in every chart; a checkpoint (``cgcnn@…``) keeps one stable colour."""
    if name in ENCODER_COLOURS:
        return ENCODER_COLOURS[name]
    digest = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
    return PRETRAINED_COLOURS[digest % len(PRETRAINED_COLOURS)]


def place_title(fig: go.Figure, title: str, *, height: int, size: int = 14) -> None:
    """Title left-aligned below the toolbar band, and a top margin that fits both."""
    top = MODEBAR_CLEARANCE + size + 14
    fig.update_layout(height=height, title={"text": title, "font": {"size": size}, "x": 0.01, "xanchor": "left",
                                            "yref": "container", "y": 1 - MODEBAR_CLEARANCE / height,
                                            "yanchor": "top"},
                      margin={**fig.layout.margin.to_plotly_json(), "t": top + (18 if "<br>" in title else 0)})


def colour_options(dataset: Dataset) -> dict[str, str]:
    """Columns a map can be coloured by -> ``"numeric"`` or ``"categorical"``: properties first."""
    structure = {"crystal_system": "categorical", "spacegroup": "categorical", "nsites": "numeric"}
    out = {p: info.kind for p, info in dataset.properties.items()}
    out.update({c: kind for c, kind in structure.items() if c in dataset.table and c not in out})
    return out


def column_label(dataset: Dataset, column: str) -> str:
    """``"density (g/cm³)"`` for a property, ``"space group"`` for a structure column (:func:`label_name`)."""
    if column in dataset.properties or (column in COLUMN_NAMES and column in colour_options(dataset)):
        return label_name(column, dataset)
    raise ValueError(f"cannot colour by {column!r}; valid: {', '.join(colour_options(dataset))}.")


@dataclass(frozen=True, eq=False)
class Colouring:
    """What each point's colour means.

    Attributes:
        column: Table column (or ``"cluster"``).
        label: Column label with unit.
        kind: ``"numeric"`` or ``"categorical"``.
        values: Numeric: colour value per row (log10 when ``scale == "log"``, clipped to
            ``[lo, hi]``), NaN where the row has no colour. Categorical: the legend entry per row.
        text: The row's raw value for hover.
        scale: ``"linear"`` or ``"log"`` (numeric only).
        clip: Percent clipped at each end (numeric only).
        lo: Lower end of the colour range (in colour units).
        hi: Upper end.
        categories: Legend order (categorical).
        uncoloured: Rows drawn grey (no value; or a value <= 0 on a log scale).
        caption: One sentence stating column, scale, clipping and uncoloured rows.
        colours: Fixed colours of some legend entries (e.g. cluster noise), overriding the palette.
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
    colours: dict[str, str] = field(default_factory=dict)

    def colour_of(self, category: str) -> str:
        """Hex colour of a legend entry (categorical)."""
        if category in self.colours:
            return self.colours[category]
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
    if kind is None:
        raise ValueError(f"cannot colour by {column!r}; valid: {', '.join(colour_options(dataset))}.")
    label = column_label(dataset, column)
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
    caption += f"; {plural(missing, 'crystal')} without a value drawn grey." if missing else "."
    return Colouring(column, label, "categorical", entries.astype(object), names.tolist(), categories=cats,
                     uncoloured=missing, caption=caption)


def cluster_colouring(labels: np.ndarray) -> Colouring:
    """Colour by cluster: noise (``-1``) grey, drawn first; each cluster its own colour, up to 20.

    With more clusters than :data:`CLUSTER_PALETTE` has colours (HDBSCAN finds thousands in 200k
    crystals), the 19 largest keep their own colours, in size order as in the cross-tab, and every
    smaller cluster is drawn in one legend entry, under them: thousands of legend entries (and one trace each)
    are unreadable and slow in the browser. Hover still names each point's cluster.
    """
    labels = np.asarray(labels, dtype=np.int64)
    names = np.where(labels < 0, "noise", np.char.add("cluster ", labels.astype(str))).astype(object)
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    noise = int((labels < 0).sum())
    caption = f"Colour: cluster, {plural(len(ids), 'cluster')}"
    values = names
    if len(ids) <= len(CLUSTER_PALETTE):
        clusters = [f"cluster {c}" for c in ids.tolist()]
    else:
        shown = ids[np.lexsort((ids, -sizes))[:len(CLUSTER_PALETTE) - 1]]
        clusters = [f"cluster {c}" for c in shown.tolist()]
        rest = len(ids) - len(shown)
        smaller = plural(rest, "smaller cluster")
        values = np.where((labels >= 0) & ~np.isin(labels, shown), smaller, names).astype(object)
        clusters.insert(0, smaller)  # drawn under the named clusters, just above noise
        caption += (f"; the {len(shown)} largest in their own colours, the other {rest:,} in one dark grey"
                    " (hover names each point's cluster)")
    named = clusters[1:] if len(ids) > len(CLUSTER_PALETTE) else clusters
    colours = {name: CLUSTER_PALETTE[i % len(CLUSTER_PALETTE)] for i, name in enumerate(named)}
    if len(named) < len(clusters):
        colours[clusters[0]] = OTHER
    cats = (["noise"] if noise else []) + clusters
    caption += f", {plural(noise, 'crystal')} of noise drawn grey." if noise else "."
    return Colouring("cluster", "cluster", "categorical", values, names.tolist(), categories=cats, caption=caption,
                     colours={**colours, "noise": NOISE})
