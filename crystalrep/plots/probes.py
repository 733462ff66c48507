"""Figures and small tables for the Probes page: card texts, the split comparison, learning curves.

No Streamlit here; ``tests/plots/test_probes.py`` checks that the data inside follows the inputs.
Encoder colours come from :func:`crystalrep.plots.style.encoder_colour`, as in every other chart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from crystalrep.plots.style import encoder_colour

if TYPE_CHECKING:
    import plotly.graph_objects as go

SPLIT_NAMES = {"random": "random", "grouped": "grouped (by chemical system)", "element": "leave one element out"}
R2_FLOOR = -1.0  # the learning-curve axis stops here; lower values are named in an annotation


def pm(mean: float, std: float, digits: int = 2, *, folds: int | None = None) -> str:
    """``"0.81 ± 0.03"`` with a true minus sign; ``"—"`` for NaN; ``"0.81 (1 fold)"`` for a single fold.

    A single fold has no spread to report, so it says so instead of showing ``± 0.00``.
    """
    if not math.isfinite(mean):
        return "—"
    if folds == 1:
        text = f"{mean:.{digits}f} (1 fold)"
    else:
        text = f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}"
    return text.replace("-", "−")


def _folds(row: Any) -> int | None:
    folds = row.get("r2_folds") if hasattr(row, "get") else None
    return None if folds is None else len(folds)


def card_texts(row: dict[str, Any], unit: str = "") -> dict[str, str]:
    """What one probe card shows: R², MAE (with unit) and a caption with n and the train size.

    Args:
        row: One row of :func:`crystalrep.analysis.probes.compare`.
        unit: Unit of the property (empty when dimensionless).
    """
    folds = len(row["r2_folds"])
    digits = 3 if abs(row["mae_mean"]) < 0.1 else 2
    return {
        "r2": pm(row["r2_mean"], row["r2_std"], folds=folds),
        "mae_label": f"MAE ({unit})" if unit else "MAE",
        "mae": pm(row["mae_mean"], row["mae_std"], digits, folds=folds),
        "caption": (f"n = {row['n']:,} labelled · train {row['n_train']:,.0f} per fold · "
                    f"{folds} fold{'s' * (folds != 1)}"),
    }


def split_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Encoder × split table of ``R² mean ± std`` from :func:`compare` rows of several splits."""
    table = rows.assign(r2=[pm(row["r2_mean"], row["r2_std"], folds=_folds(row)) for _, row in rows.iterrows()])
    wide = table.pivot(index="encoder", columns="split", values="r2")
    order = [s for s in SPLIT_NAMES if s in wide.columns]
    wide = wide.reindex(index=list(dict.fromkeys(rows["encoder"])), columns=order)
    return wide.rename(columns={s: f"R² {s}" for s in order}).reset_index()


def learning_curve_figure(curve: pd.DataFrame, *, title: str, floor: float = R2_FLOOR) -> go.Figure:
    """R² against training labels (log x), one line per encoder with a ±std band.

    Args:
        curve: Rows of :func:`crystalrep.analysis.probes.learning_curve` (``encoder``,
            ``n_labels``, ``r2_mean``, ``r2_std``).
        title: Figure title.
        floor: Lowest R² drawn; values below it are listed in an annotation instead.

    Returns:
        Per encoder two traces: the band (named ``"<encoder> ± std"``) then the mean line
        (named after the encoder, ``y`` = mean R² per size).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    below = []
    single = "r2_folds" in curve.columns and len(curve) > 0 and all(len(f) == 1 for f in curve["r2_folds"])
    spread = "(1 fold)" if single else "± %{customdata:.3f}"
    for name, part in curve.groupby("encoder", sort=False):
        part = part.sort_values("n_labels")
        x, mean, std = part["n_labels"].to_numpy(), part["r2_mean"].to_numpy(), part["r2_std"].to_numpy()
        colour = encoder_colour(str(name))
        fig.add_trace(go.Scatter(x=[*x, *x[::-1]], y=[*(mean + std), *(mean - std)[::-1]], fill="toself",
                                 fillcolor=colour, opacity=0.18, line={"width": 0}, hoverinfo="skip",
                                 name=f"{name} ± std", showlegend=False, legendgroup=name))
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=name, legendgroup=name,
                                 line={"color": colour}, marker={"color": colour}, customdata=std,
                                 hovertemplate=f"{name}<br>N = %{{x}}<br>R² = %{{y:.3f}} {spread}<extra></extra>"))
        below += [f"{name} at N={n}: {m:.2f}".replace("-", "−") for n, m in zip(x, mean, strict=True) if m < floor]
    upper = float(max(1.0, (curve["r2_mean"] + curve["r2_std"]).max())) if len(curve) else 1.0
    lower = float(max(floor, (curve["r2_mean"] - curve["r2_std"]).min() - 0.05)) if len(curve) else floor
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.22})
    sizes = sorted(curve["n_labels"].unique().tolist()) if len(curve) else []
    fig.update_xaxes(type="log", title_text="training labels N (log scale)", tickvals=sizes, ticktext=[str(n) for n in sizes])
    fig.update_yaxes(title_text="test R² (one fold)" if single else "test R² (mean ± std over folds)",
                     range=[lower, min(upper, 1.05)])
    if below:
        fig.add_annotation(text="Below the axis: " + "; ".join(below), xref="paper", yref="paper", x=0, y=0,
                           xanchor="left", yanchor="bottom", showarrow=False, font={"size": 11})
    return fig
