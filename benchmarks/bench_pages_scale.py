"""Scaling: pages. Each dashboard page's server time at N = 10k, 50k, 200k crystals, cold and warm.

The datasets are SYNTHETIC (``benchmarks/make_scale_dataset.py``: real MP-20/perov_5/carbon_24
cells plus element substitutions and strain), magpie-embedded; the store holds dataset and
embeddings before any page runs ("store warm"), plus whatever earlier visits stored there (the
dataset's remembered fingerprint, map scores, PCA maps, precision reports): a store in use. Each (N, page) runs in a fresh Python process
(a fresh server: nothing cached in memory): ``cold`` is the first AppTest run of the page,
``warm`` the best of two reruns of it. Background starts (UMAP/t-SNE maps, sweeps) are recorded,
not spawned: the page's own time is measured, not the jobs it hands off. ``points`` is the most
points any one plotly figure of the page ships (counted in its JSON); ``peak RSS`` is the
process's. A page that has not answered within the timeout is reported as such, with the time.
Targets at 200k: warm < 1 s, cold < 5 s, ≤ 100,000 points per figure. The store lives in
``$CRYSTALREP_SCALE_HOME`` (default ``/tmp/crystalrep-scale``); datasets are built there once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import row

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10_000, 50_000, 200_000)  # ``CRYSTALREP_SCALE_SIZES=200000`` (comma-separated) measures others
PAGES = ("data", "projections", "probes", "retrieval", "clusters", "pretraining", "checklist", "lecture")
TIMEOUT_S = 150.0
TARGET_WARM, TARGET_COLD, TARGET_POINTS = 1.0, 5.0, 100_000


def scale_home() -> Path:
    """Where the scaling datasets and their embeddings are stored."""
    return Path(os.environ.get("CRYSTALREP_SCALE_HOME", "/tmp/crystalrep-scale"))


def _figure_points(at: Any) -> int:
    from crystalrep.plots.projections import figure_points

    return max((figure_points(json.loads(c.proto.spec)) for c in at.get("plotly_chart")), default=0)


def page_title(page: str) -> str:
    """Words the page's title starts with."""
    return {"data": "Dataset", "checklist": "Reproducibility"}.get(page, page.capitalize())


def child(dataset: str, page: str) -> dict[str, Any]:
    """Run one page cold then warm in this (fresh) process; seconds, points and peak RSS."""
    import resource

    from streamlit.testing.v1 import AppTest

    from crystalrep.jobs import background

    started: list[list[str]] = []
    background.start = lambda argv, *, key: started.append(list(argv))
    import ui

    # the app opens its first menu page: make it this one, so the first run is this page, cold
    ui.PAGES = tuple(sorted(ui.PAGES, key=lambda p: p.path != f"views/{page}.py"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_S)
    at.session_state["crystalrep.dataset"] = dataset
    at.session_state["crystalrep.encoders"] = ["magpie"]
    start, cpu = time.perf_counter(), time.process_time()
    at.run()
    cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
    warm = warm_cpu = float("inf")
    for _ in range(2):
        start, cpu = time.perf_counter(), time.process_time()
        at.run()
        warm, warm_cpu = min(warm, time.perf_counter() - start), min(warm_cpu, time.process_time() - cpu)
    errors = [e.message for e in at.exception]
    if not at.title or page_title(page) not in str(at.title[0].value):
        errors.insert(0, f"expected the {page} page, got {[t.value for t in at.title][:1]}")
    return {"cold": cold, "warm": warm, "cold_cpu": cold_cpu, "warm_cpu": warm_cpu, "points": _figure_points(at), "errors": errors[:1],
            "background": len(started), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _measure(dataset: str, page: str, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "CRYSTALREP_HOME": str(scale_home()), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_pages_scale", dataset, page], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:  # run() killed the child
        return {"timeout": True, "cold": time.perf_counter() - start}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def run(quick: bool) -> list[dict[str, Any]]:
    """Every page at every size, each in its own process."""
    from benchmarks.make_scale_dataset import ensure

    os.environ["CRYSTALREP_HOME"] = str(scale_home())
    rows = []
    sizes = tuple(int(v) for v in os.environ.get("CRYSTALREP_SCALE_SIZES", "").split(",") if v.strip()) or SIZES
    for n in sizes[:1] if quick else sizes:
        name = ensure(n)
        for page in PAGES:
            res = _measure(name, page, TIMEOUT_S + 60)
            if "error" in res:
                rows.append({**row(f"page {page} cold", "AppTest, fresh process", "ours", n, float("nan"),
                                   f"failed: {res['error'][:120]}"), "page": page})
                continue
            if res.get("timeout"):
                rows.append({**row(f"page {page} cold", "AppTest, fresh process", "ours", n, res["cold"],
                                   f"no answer within {TIMEOUT_S + 60:.0f} s (killed)"), "page": page, "timeout": True})
                continue
            note = (f"{res['points']:,} points/figure; peak RSS {res['rss_mb']:.0f} MB"
                    + (f"; {res['background']} background start(s) recorded" if res["background"] else "")
                    + (f"; page error: {res['errors'][0][:100]}" if res["errors"] else ""))
            for kind in ("cold", "warm"):
                cpu = f"CPU {res[kind + '_cpu']:.2f} s; "
                rows.append({**row(f"page {page} {kind}", "AppTest, fresh process", "ours", n, res[kind], cpu + note),
                             "page": page, "peak_rss_mb": round(res["rss_mb"], 1), "points": res["points"]})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Targets at the largest N measured."""
    top = max((r["n"] for r in rows), default=0)
    out = []
    for r in rows:
        if r["n"] != top:
            continue
        kind = r["stage"].rsplit(" ", 1)[-1]
        target = TARGET_WARM if kind == "warm" else TARGET_COLD
        ok = r["seconds"] == r["seconds"] and r["seconds"] < target and not r.get("timeout")
        points = r.get("points", 0)
        out.append(f"{r['stage']} at {top:,}: {r['seconds']:.2f} s (target < {target:g} s: "
                   f"{'met' if ok else 'MISSED'}); {points:,} points/figure "
                   f"({'≤' if points <= TARGET_POINTS else '>'} {TARGET_POINTS:,}).")
    return out


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2])))
