"""The static picture of a projection sweep: seeds × parameter values as small multiples in one PNG (matplotlib).

Coloured by the same :class:`~crystalrep.plots.style.Colouring` as the live maps, so the grid and
the maps never disagree about what a colour means. No Streamlit and no analysis imports here.
"""

from __future__ import annotations

import io
import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.plots.map_captions import params_text
from crystalrep.plots.style import MISSING, Colouring

if TYPE_CHECKING:
    from crystalrep.analysis.sweeps import SweepResult


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
                ax.set_title(params_text({g: cell[g] for g in grid_names}), fontsize=9)
            if c == 0:
                ax.set_ylabel(f"seed {seed}", fontsize=9)
    # wrapped to the figure's width (~1 character per 6 px at 10 pt), so a 2-column grid keeps its title
    wrapped = textwrap.fill(title, width=max(40, int(fig.get_figwidth() * dpi / 6.5)))
    fig.suptitle(wrapped, fontsize=10)
    top = 1.0  # tight_layout leaves room for the (wrapped) suptitle itself
    if colour.kind == "categorical":
        handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour.colour_of(cat), label=cat)
                   for cat in colour.categories]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, top))
    elif math.isfinite(colour.lo):
        fig.tight_layout(rect=(0, 0, 0.92, top))
        mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(colour.lo, colour.hi))
        bar = fig.colorbar(mappable, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
        bar.set_label(("log10 " if colour.scale == "log" else "") + colour.label, fontsize=8)
    else:
        fig.tight_layout(rect=(0, 0, 1, top))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.15)  # the colour-bar label stays inside
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
