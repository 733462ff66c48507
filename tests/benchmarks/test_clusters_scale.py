"""The clustering scaling benchmark: real runs in fresh processes, and sizes forecast over budget not started."""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_clusters_scale as bench


def test_each_clusterer_runs_in_its_own_process_and_reports_time_memory_and_what_it_found(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "QUICK_SIZES", (300, 600))
    monkeypatch.setattr(bench, "METHODS", {m: bench.METHODS[m] for m in ("hdbscan", "kmeans")})
    rows = bench.run(quick=True)
    assert [(r["stage"], r["n"]) for r in rows] == [
        ("Scaling: clustering hdbscan 300×64", 300), ("Scaling: clustering hdbscan 600×64", 600),
        ("Scaling: clustering kmeans 300×64", 300), ("Scaling: clustering kmeans 600×64", 600)]
    assert all(r["seconds"] > 0 and "peak RSS" in r["note"] for r in rows)
    assert "on every dimension: " in rows[0]["note"] and "k = " in rows[2]["note"]
    assert len(bench.summary(rows)) == 2


def test_the_page_default_clusters_principal_components_above_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    got = bench._child("hdbscan", 20_001)  # just above: the page's HDBSCAN runs on 10 principal components
    assert got is not None and got["pca"] == 10 and got["clusters"] > 1


def test_a_size_forecast_over_the_budget_is_skipped_and_said_so(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []

    def fake(method: str, n: int) -> dict:
        started.append(n)
        return {"seconds": 400.0 * n / 10_000, "cpu": 1.0, "peak_gb": 1.0, "clusters": 3, "noise": 0.1, "k": 3,
                "load": 0.0}

    monkeypatch.setattr(bench, "_child", fake)
    monkeypatch.setattr(bench, "SIZES", (10_000, 50_000))
    rows = bench.run(quick=False)
    assert started == [10_000, 10_000, 10_000]  # 50k forecast at 2,000 s (quadratic: 10,000 s) > 600 s
    skipped = {r["impl"]: r["note"] for r in rows if math.isnan(r["seconds"])}
    assert len(skipped) == 3 and "forecast 10000 s" in skipped[bench.METHODS["hdbscan-full"]]
    assert "forecast 2000 s" in skipped[bench.METHODS["kmeans"]]
    assert any("50,000 rows: skipped" in line for line in bench.summary(rows))


def test_a_size_after_a_stopped_run_is_not_started_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    results = iter([{"seconds": 1.0, "cpu": 1.0, "peak_gb": 1.0, "clusters": 3, "noise": 0.1, "k": 3, "load": 0.0},
                    None])  # the second size runs over the budget and is stopped

    monkeypatch.setattr(bench, "_child", lambda method, n: next(results, None))
    monkeypatch.setattr(bench, "METHODS", {"hdbscan": "h"})
    monkeypatch.setattr(bench, "SIZES", (10, 20, 40))
    notes = [r["note"] for r in bench.run(quick=False)]
    assert notes[1].endswith("(stopped at the limit)")
    assert notes[2].endswith("(not started: the 20-row size did not finish within the budget)")
