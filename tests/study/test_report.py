"""The study report's Markdown, rendered from the committed full-run report."""

from __future__ import annotations

import json
from pathlib import Path

from crystalrep.study.report import render_markdown

REPORT = Path(__file__).resolve().parents[2] / "docs" / "cdssl" / "report.json"


def test_verdict_by_training_size_calls_size_zero_all() -> None:
    report = json.loads(REPORT.read_text())
    line = next(ln for ln in render_markdown(report).splitlines() if ln.startswith("- **n**"))
    assert "all: " in line and " 0: " not in line
    assert line.index("50: ") < line.index("200: ") < line.index("1000: ") < line.index("all: ")
