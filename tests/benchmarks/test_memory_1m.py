"""The 1M-row memory section's summary: measured rows against the target, the import fitted and marked extrapolated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_memory_1m as bench


def _row(stage: str, n: int, mb: int) -> dict:
    return {"stage": stage, "impl": "x", "kind": "ours", "n": n, "seconds": 1.0, "note": "", "peak_rss_mb": mb}


def test_summary_fits_the_import_over_every_size_and_says_extrapolated(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "import-scale.json"
    other.write_text(json.dumps({"rows": [_row("import 10,000", 10_000, 400), _row("import 50,000", 50_000, 440),
                                          {**_row("import 50,000", 50_000, 900), "kind": "peer"}]}))
    monkeypatch.setattr(bench, "IMPORT_SCALE_OUT", other)
    lines = bench.summary([_row("import 200,000 (synthetic CSV)", 200_000, 590),
                           _row("embed magpie 1,000,000 (synthetic)", 1_000_000, 5_000)])
    assert "0.58 GB, measured" in lines[0] and "met" in lines[0]
    assert "4.88 GB, measured" in lines[1] and "not met" in lines[1]
    # 400, 440, 590 MB at 10k, 50k, 200k: a straight line through them reaches ~1.4 GB at 1M, the peer row ignored
    assert "10,000, 50,000, 200,000 rows" in lines[2] and "EXTRAPOLATED (not measured)" in lines[2]
    assert "1,000,000 rows: 1.3" in lines[2] or "1,000,000 rows: 1.4" in lines[2]


def test_summary_without_other_sizes_does_not_extrapolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "IMPORT_SCALE_OUT", tmp_path / "absent.json")
    lines = bench.summary([_row("import 200,000 (synthetic CSV)", 200_000, 590)])
    assert len(lines) == 1 and "EXTRAPOLATED" not in lines[0]
