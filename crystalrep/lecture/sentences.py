"""The Lecture's result sentences, built from the computed numbers (no Streamlit here).

Each function states what its section's numbers show — including when they do not show the
effect the lecture expects — so no sentence on the page is typed in ahead of the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["analogy_verdict", "contrast_verdict", "invariance_verdict", "pretraining_verdict"]


def invariance_verdict(results: dict[str, dict[str, Any]]) -> str:
    """One sentence per encoder that breaks an invariance, or one saying all hold; plus the thermal scale."""
    broken = []
    for name, result in results.items():
        bad = [f"{t} (max {s['max']:.1e})" for t, s in result["transforms"].items() if s["passed"] is False]
        if bad:
            broken.append(f"**{name}** changes under {', '.join(bad)}")
    head = ("; ".join(broken) + " — a map of such an embedding partly shows how the file was written, not the "
            "crystal." if broken else "Every encoder here is invariant to all four operations.")
    thermal = {n: r["transforms"]["thermal"]["median"] for n, r in results.items() if "thermal" in r["transforms"]}
    blind = [n for n, v in thermal.items() if v < 1e-4]
    tail = (f" Thermal noise leaves {', '.join(blind)} unchanged: {'it ignores' if len(blind) == 1 else 'they ignore'} "
            "atomic positions." if blind else " Thermal noise moves every encoder, as it should.")
    return head + tail


def contrast_verdict(prop: str, good: str, r2_geo: float, r2_good: float, geo: dict[str, Any],
                     best: dict[str, Any]) -> str:
    """What section 2's numbers show, in words (the effect, or what is seen instead)."""
    sep_geo, sep_good = geo.get("separation"), best.get("separation")
    seps = "separation " + " vs ".join("–" if v is None else f"{v:.2f}" for v in (sep_geo, sep_good))
    trust = f"trustworthiness {geo['trustworthiness']:.2f}"
    if sep_geo is not None and (sep_good is None or sep_geo >= sep_good - 0.1):
        degree = "at least as clean as" if sep_good is None or sep_geo >= sep_good else "about as clean as"
        head = (f"The cell-size map looks {degree} "
                f"{good}'s ({seps}) and is a faithful picture of its embedding ({trust}). ")
    else:
        head = (f"The cell-size map looks less clean than {good}'s here ({seps}), though it is faithful to its "
                f"embedding ({trust}). ")
    if not (np.isfinite(r2_geo) and np.isfinite(r2_good)):
        return head + f"The probes have no score for {prop} here (too few labelled crystals per fold)."
    if r2_geo < 0.1 and r2_good - max(r2_geo, 0.0) > 0.3:
        return head + (f"But a linear probe recovers {prop} with R² {r2_geo:.2f} from cell size alone against "
                       f"{r2_good:.2f} from {good}: a clean, trustworthy map says the picture is faithful to the "
                       "embedding, not that the embedding knows the property.")
    if r2_geo >= 0.1:
        return head + (f"Cell size alone is not ignorant of {prop} (R² {r2_geo:.2f}; {good}: {r2_good:.2f}), so this "
                       "property does not show the effect; pick one whose cell-size R² is near 0.")
    return head + (f"Cell size alone predicts nothing (R² {r2_geo:.2f}), but {good} does little better "
                   f"({r2_good:.2f}): the property is hard for every embedding here, so this is not a clean contrast.")


def pretraining_verdict(grid: pd.DataFrame, pre: list[str]) -> str:
    """Section 3 in words: does any pretrained checkpoint beat random weights by more than the fold spread?"""
    scores = {row.embedding: (row.r2_mean, row.r2_std) for row in grid.itertuples()}
    parts = [f"{name} {mean:.2f}" for name, (mean, _) in scores.items() if np.isfinite(mean)]
    text = "Probe R²: " + ", ".join(parts) + "." if parts else "No probe produced a finite R² here."
    if "cgcnn-random" not in scores:
        return text
    base, base_std = scores["cgcnn-random"]
    if "magpie" in scores and np.isfinite(base):
        mag, mag_std = scores["magpie"]
        spread = max(mag_std, base_std)
        text += (" Random weights " + ("beat" if base - mag > spread else "trail" if mag - base > spread else
                                       "are within the fold spread of") + " the composition-only Magpie baseline.")
    for name in pre:
        if name not in scores:
            continue
        mean, std = scores[name]
        spread = max(std, base_std)
        verdict = ("beats random weights by more than the fold spread" if mean - base > spread else
                   "is worse than random weights" if base - mean > spread else
                   "is within the fold spread of random weights: no evidence that pretraining helped here")
        text += f" {name} {verdict} ({mean:.2f} vs {base:.2f}, spread ±{spread:.2f})."
    return text


def analogy_verdict(summary: pd.DataFrame) -> str:
    """Section 4 in words: which embedding does analogies best, and what a random network's score means.

    ``summary`` holds percentages (0–100), as :func:`crystalrep.lecture.examples.analogy_tables` returns them.
    """
    if summary.empty:
        return ""
    best = summary.sort_values(["answer ranked 1st", "median residual"], ascending=[False, True]).iloc[0]
    text = (f"**{best['encoder']}** ranks the expected answer first in {best['answer ranked 1st']:.0f}% of the "
            f"{int(best['analogies']):,} analogies, and its arithmetic beats simply answering a or c in "
            f"{best['beats answering a or c']:.0f}% of them.")
    why = ("averaging per-site features over one structure type makes a one-site substitution move the vector by "
           "nearly the same step whatever the other sites hold, so clean analogies here show additivity, not "
           "learned chemistry.")
    random = summary[summary["encoder"] == "cgcnn-random"]
    if best["encoder"] == "cgcnn-random":
        text += f" That is a network with random weights: {why}"
    elif len(random) and random["answer ranked 1st"].iloc[0] >= best["answer ranked 1st"] - 5:
        text += (f" A network with random weights does nearly as well (cgcnn-random: "
                 f"{random['answer ranked 1st'].iloc[0]:.0f}% first): {why}")
    return text
