"""Draw ``benchmarks/scaling.png``: time and peak RSS against N for every scaling stage measured so far.

Reads every scaling section the runner wrote (``benchmarks/out/*scale*.json`` and ``memory-1m.json``;
the rows of :mod:`benchmarks`), whoever wrote it, and sorts each into a stage by its section name
(``memory-1m``, which holds import and embed rows, row by row): import, embed, projections, kNN,
clustering, pages. One column per stage that has rows: seconds against
N on top, peak RSS against N below (from a ``peak_rss_mb``/``peak_mb``/``rss_mb`` field of the
row, or "peak RSS 1,234 MB" / "peak RSS 1.2 GB" in its note). A series is one (stage row, implementation);
rows that timed out are drawn as open markers. Dashed lines are the issue's targets (pages: warm
1 s and cold 5 s at 200k; import and embed: 4 GB at 1M rows).

Usage: ``python -m benchmarks.plot_scaling [--out benchmarks/scaling.png]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
STAGES = (("task", "background tasks"), ("import", "import"), ("embed", "embed"), ("projection", "projections"),
          ("knn", "kNN"), ("cluster", "clustering"), ("pages", "pages"))
RSS_FIELDS = ("peak_rss_mb", "peak_mb", "rss_mb")
RSS_NOTE = re.compile(r"peak RSS ([\d.,]+)\s*(MB|GB)", re.I)
SIZE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*([kM]?)(?=\s*×)")  # "200,000×128", "200k×64": N of the stage
TARGETS = {"pages": [(1.0, "warm target 1 s"), (5.0, "cold target 5 s")]}
RSS_TARGETS = {"import": 4096.0, "embed": 4096.0}
EXTRA_SECTIONS = ("memory-1m",)  # scaling rows in a section not named ``*-scale``: import at 200k, embed at 1M
log = logging.getLogger(__name__)


def stage_of(section: str) -> str | None:
    """``"kNN"`` for ``knn-scale`` and so on; ``None`` for a section that is not a scaling stage."""
    low = section.lower()
    return next((label for key, label in STAGES if key in low), None)


def peak_rss_mb(row: dict[str, Any]) -> float | None:
    """Peak RSS of a row in MB, from a field or its note (``None`` when it has none)."""
    for field in RSS_FIELDS:
        if isinstance(row.get(field), int | float):
            return float(row[field])
    match = RSS_NOTE.search(str(row.get("note", "")))
    if match is None:
        return None
    value = float(match.group(1).replace(",", ""))
    return value * 1024 if match.group(2).upper() == "GB" else value


def size_and_series(row: dict[str, Any]) -> tuple[int, str]:
    """N of a row (from its stage name when the stage names it, e.g. "kNN 200,000×128 …"; else ``n``) and its
    series name (the stage without N, plus the implementation for peers and floors)."""
    stage = str(row["stage"]).removeprefix("Scaling: ")
    match = SIZE.search(stage)
    n = int(row["n"])
    if match is not None:
        n = int(float(match.group(1).replace(",", "")) * {"": 1, "k": 1_000, "M": 1_000_000}[match.group(2)])
        stage = stage[:match.start()] + "N" + stage[match.end():]
    elif re.search(rf"(?<![\d,]){n:,}(?![\d,])", stage):  # "import 50,000 (synthetic CSV)": N is the row's n
        stage = re.sub(rf"(?<![\d,]){n:,}(?![\d,])", "N", stage, count=1)
    return n, stage if row.get("kind") == "ours" else f"{stage} · {row.get('impl', '')}"


def load(folder: Path = OUT) -> dict[str, dict[str, list[tuple[int, float, float | None, bool]]]]:
    """``{stage: {series: [(n, seconds, rss_mb, timed_out), ...]}}`` from every scaling result file."""
    out: dict[str, dict[str, list[tuple[int, float, float | None, bool]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(folder.glob("*.json")):
        if "scal" not in path.stem and path.stem not in EXTRA_SECTIONS:
            continue
        section = stage_of(path.stem)
        data = json.loads(path.read_text())
        if data.get("skipped"):
            continue
        for row in data.get("rows", []):
            # a section of several stages (``memory-1m``: import and embed) is sorted row by row
            stage = section or stage_of(str(row.get("stage", "")))
            seconds = row.get("seconds")
            if stage is None:
                continue
            if not isinstance(seconds, int | float) or not math.isfinite(seconds) or not row.get("n"):
                continue
            n, series = size_and_series(row)
            out[stage][series].append((n, float(seconds), peak_rss_mb(row), bool(row.get("timeout"))))
    return {k: dict(v) for k, v in out.items()}


def draw(results: dict[str, dict[str, list[tuple[int, float, float | None, bool]]]], path: Path) -> Path:
    """Write the figure (one column per stage, time above peak RSS) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [label for _, label in STAGES if label in results]
    if not stages:
        raise FileNotFoundError(f"no scaling results in {OUT} (run python -m benchmarks.run --only <name>-scale).")
    fig, axes = plt.subplots(2, len(stages), figsize=(4.2 * len(stages), 8.0), squeeze=False)
    for c, stage in enumerate(stages):
        top, bottom = axes[0, c], axes[1, c]
        names = sorted(results[stage])
        bases = sorted({n.removesuffix(" warm").removesuffix(" cold") for n in names})
        palette = plt.get_cmap("tab10" if len(bases) <= 10 else "tab20")
        for series in names:
            points = sorted(results[stage][series])
            ns = [p[0] for p in points]
            base = series.removesuffix(" warm").removesuffix(" cold")
            (line,) = top.plot(ns, [p[1] for p in points], marker="o", ms=4, lw=1.2, label=series,
                               color=palette(bases.index(base) % palette.N), ls="--" if series.endswith(" warm") else "-")
            late = [p for p in points if p[3]]
            if late:
                top.plot([p[0] for p in late], [p[1] for p in late], "o", mfc="white", color=line.get_color(), ms=7)
            rss = [(p[0], p[2]) for p in points if p[2] is not None]
            if rss and not series.endswith(" warm"):  # a page's warm run shares its process (and RSS) with cold
                bottom.plot(*zip(*rss, strict=True), marker="o", ms=4, lw=1.2, color=line.get_color(), label=series)
        if not bottom.lines:
            bottom.text(0.5, 0.5, "no peak RSS reported", transform=bottom.transAxes, ha="center", color="#888")
        for value, text in TARGETS.get(stage, []):
            top.axhline(value, color="#d1495b", ls="--", lw=0.8)
            top.annotate(text, (0.02, value), xycoords=("axes fraction", "data"), fontsize=7, color="#d1495b",
                         va="bottom")
        if stage in RSS_TARGETS and bottom.lines:
            bottom.axhline(RSS_TARGETS[stage], color="#d1495b", ls="--", lw=0.8)
        top.set_title(stage, fontsize=11)
        top.set_ylabel("seconds (wall)")
        bottom.set_ylabel("peak RSS (MB)")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xlabel("N (crystals)")
            ax.grid(True, which="both", alpha=0.25)
        top.set_yscale("log")
        top.legend(fontsize=6, loc="upper left", ncol=1 if len(results[stage]) <= 8 else 2, frameon=False)
    fig.suptitle("crystalrep scaling: time and peak RSS against N (synthetic rows where no real set is that "
                 "large; open markers: timed out)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.plot_scaling``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "scaling.png")
    parser.add_argument("--results", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = load(args.results)
    log.info("stages: %s", ", ".join(f"{k} ({len(v)} series)" for k, v in results.items()))
    log.info("wrote %s", draw(results, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
