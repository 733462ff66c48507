"""### Scaling: peak memory at 200k and 1M rows

Issue 10's memory target: peak memory of `data import` and `embed` at 1M rows below 4 GB. `embed`
is measured at N = 1,000,000: `crystalrep embed --encoder magpie` of the SYNTHETIC dataset of
`benchmarks/make_scale_dataset.py` (said so: real MP-20 mini, perov_5 and carbon_24 cells plus
element substitutions within a chemical family; built in a separate process first, not measured),
the sharded precompute every encoder goes through. magpie, because a GNN at 1M rows is hours on 2
cores; the pipeline's memory is its shards', not the encoder's. `import` is the streaming import (2
worker processes, Parquet shards) of the SYNTHETIC CSV of `bench_import_scale` at N = 200,000, NOT
1M: parsing a CIF and labelling it with spglib costs ~6.5 ms CPU a row here, so 1M rows are ~1.8 CPU-
hours, more than this shared 2-core machine could spare. The import's memory beyond its fixed part
(workers, one chunk in flight per worker, the shard writer) is the parent's set of row ids and a
list of shards; the summary fits peak PSS against N over the `import-scale` rows and this one and
states the 1M value as an extrapolation, marked so. Peak memory is sampled every 2 s over the whole
process tree as PSS (shared pages counted once) and as the RSS sum; each step is a fresh process.
Memory, not time, is the measurement: the wall time is only indicative (load in the note).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import peak_tree_memory, row
from benchmarks.bench_import_scale import write_csv

EMBED_ROWS = 1_000_000
IMPORT_ROWS = 200_000
QUICK_ROWS = 5_000
TARGET_GB = 4.0
SAMPLE_S = 2.0
IMPORT_SCALE_OUT = Path(__file__).resolve().parent / "out" / "import-scale.json"  # the other sizes' imports


def _sampled(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``argv``, sampling the PSS and RSS of its process tree; wall, CPU and peaks."""

    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty child cannot block on it
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    peak_pss, peak_rss = peak_tree_memory(proc.pid, lambda: proc.poll() is None, SAMPLE_S)
    seconds = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    errors.seek(0)
    last = "".join(errors.read().strip().splitlines()[-1:])
    errors.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:5])} failed with code {proc.returncode}: {last}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"seconds": seconds, "cpu": cpu, "pss": peak_pss, "rss": peak_rss, "load": load, "stdout": out}


def _note(res: dict[str, Any], extra: str) -> str:
    return (f"CPU {res['cpu']:.0f} s; peak PSS {res['pss'] / 2**30:.2f} GB (RSS sum {res['rss'] / 2**30:.2f} GB) over the "
            f"process tree; {extra}; wall time indicative only, 1-min load before {res['load']:.1f}")


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Import ``IMPORT_ROWS`` CSV rows, then embed an ``EMBED_ROWS``-row dataset; each in a fresh process."""
    n_import, n_embed = (QUICK_ROWS, QUICK_ROWS) if quick else (IMPORT_ROWS, EMBED_ROWS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="crystalrep-bench-memory-") as tmp:
        env = {**os.environ, "CRYSTALREP_HOME": str(Path(tmp) / "home"), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        path = write_csv(Path(tmp) / f"synthetic-{n_import}.csv", n_import)
        size_gb = path.stat().st_size / 2**30
        imported = _sampled([sys.executable, "-m", "benchmarks.bench_import_scale", "--child", "streaming", str(path),
                             "imported"], env)
        facts = json.loads(imported["stdout"].strip().splitlines()[-1])
        path.unlink()
        rows.append({**row(f"import {n_import:,} (synthetic CSV)", "crystalrep streaming import, 2 workers", "ours",
                           n_import, imported["seconds"],
                           _note(imported, f"{size_gb:.2f} GB CSV; {facts['rows']:,} rows, {facts['rejected']:,} rejected")),
                     "peak_rss_mb": round(imported["pss"] / 2**20), "cpu_seconds": imported["cpu"]})
        subprocess.run([sys.executable, "-c", "import sys; from crystalrep.datasets import save_dataset; "
                        "from benchmarks.make_scale_dataset import build; "
                        "save_dataset(build(int(sys.argv[1]), 'big'))", str(n_embed)], env=env, check=True)
        embedded = _sampled([sys.executable, "-m", "crystalrep", "embed", "--dataset", "big", "--encoder", "magpie",
                             "--device", "cpu"], env)
        rows.append({**row(f"embed magpie {n_embed:,} (synthetic)", "crystalrep embed (sharded precompute)", "ours",
                           n_embed, embedded["seconds"], _note(embedded, "1 process")),
                     "peak_rss_mb": round(embedded["pss"] / 2**20), "cpu_seconds": embedded["cpu"]})
    return rows


def _import_points(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(rows, peak PSS in GB) of every streaming import measured: ``import-scale``'s and this section's."""
    points = [(r["n"], r["peak_rss_mb"] / 1024) for r in rows if r["stage"].startswith("import")]
    if IMPORT_SCALE_OUT.is_file():
        points += [(r["n"], r["peak_rss_mb"] / 1024) for r in json.loads(IMPORT_SCALE_OUT.read_text())["rows"]
                   if r["kind"] == "ours"]
    return sorted(points)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Each step's peak against the 4 GB target; the import's fitted to 1M rows."""
    out = [f"{r['stage']}: peak PSS {r['peak_rss_mb'] / 1024:.2f} GB, measured (target < {TARGET_GB:.0f} GB at 1M: "
           f"{'met' if r['peak_rss_mb'] / 1024 < TARGET_GB else 'not met'})." for r in rows]
    points = _import_points(rows)
    if len(points) >= 2:
        import numpy as np

        slope, intercept = np.polyfit([n for n, _ in points], [gb for _, gb in points], 1)
        at = slope * EMBED_ROWS + intercept
        out.append(f"import: peak PSS against N over {', '.join(f'{n:,}' for n, _ in points)} rows is "
                   f"{intercept:.2f} GB + {slope * 1e6 * 1024:.0f} MB per million rows; EXTRAPOLATED (not measured) to "
                   f"1,000,000 rows: {at:.2f} GB (target < {TARGET_GB:.0f} GB).")
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
