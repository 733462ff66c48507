"""Scaling: the pages' background tasks. Time and peak memory of what a page hands off on a big dataset.

Above a few thousand crystals the Clusters, Retrieval and Probes pages do not compute in the
server: they start a background task (a `crystalrep` command in its own process) and show its
progress; the `pages-scale` section times the page, this one the task a user then waits for.
Each task runs with the arguments its page gives it by default (built by the pages' own
functions in `ui`), at N = 10k, 50k and 200k, on the SYNTHETIC scale datasets of `pages-scale`
(real MP-20/perov_5/carbon_24 cells plus element substitutions; `make_scale_dataset.py`), magpie
embedding:
- `clusters`: `crystalrep cluster`: HDBSCAN (min_cluster_size 15; 10 principal components above
  20,000 rows), the novelty score (distance to the 10th neighbour, exact kNN) and the
  min_cluster_size sweep the page draws;
- `precision`: `crystalrep precision -k 10 --metric cosine`: precision@10 of every label;
- `probes`: `crystalrep probe --property band_gap --split random --curve ...`: 5-fold ridge probes
  and the learning curve.
Magpie depends on composition only, so the sets repeat vectors (the 200k set holds 33,701
distinct ones): the kNN steps index and search each distinct vector once.
Each (task, N) runs in a fresh Python process (the CLI imported before the timer) on a store that
holds the dataset and its embeddings but none of the task's results: a temporary
`CRYSTALREP_HOME` whose dataset and embedding files are hard links to the scale store's (the
store refuses symbolic links, and replaces files by rename, so the links never change the source). `seconds` is the
command's wall time; the note gives the process's peak RSS and CPU seconds, the CPU seconds of its
worker processes apart (from 5,000 rows the clusters sweep runs its sizes on every core, one HDBSCAN per
worker), and the 1-min load average. A run over 10 minutes is stopped and reported so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import row, run_script

SIZES = (10_000, 50_000, 200_000)
BUDGET_S = 600.0
TASKS = ("clusters", "precision", "probes")
SHARED = ("datasets", "dataset_fingerprints", "embeddings", "embedding_shards")  # inputs, hard-linked into the fresh store
ENCODER = "magpie"

_CHILD = """
import contextlib, io, json, os, resource, sys, time
from crystalrep.cli.main import main
argv = json.loads(sys.argv[1])
start, cpu = time.perf_counter(), time.process_time()
err = io.StringIO()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
    code = main(argv)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
from joblib.externals.loky import get_reusable_executor
get_reusable_executor().shutdown(wait=True)  # worker processes (the clusters sweep) exit, so their use is counted
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "seconds": seconds, "cpu": cpu, "workers_cpu": kids.ru_utime + kids.ru_stime,
                  "load": os.getloadavg()[0], "error": (err.getvalue().strip().splitlines() or [""])[-1][:200],
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def task_argv(task: str, dataset: str) -> list[str]:
    """The ``crystalrep`` arguments the page starts ``task`` with, by default, on ``dataset`` (in the store)."""
    import logging

    from crystalrep.datasets import load_dataset
    from ui import clusters, probes, retrieval
    from ui.cache import DatasetRef

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("streamlit")]:
        logging.getLogger(name).setLevel(logging.ERROR)  # "no runtime found": the pages' caches, used outside a server
    n = len(load_dataset(dataset))
    ref = DatasetRef(dataset, "")
    if task == "clusters":
        choice = clusters.Choice(encoder=ENCODER, method="hdbscan", min_cluster_size=15, k_range=(2, 12), k=None,
                                 label=None)
        argv = clusters.task(ref, choice, n)[1]
    elif task == "precision":
        argv = retrieval.report_task(ref, [ENCODER], 10, "cosine", None)[1]
    else:
        argv = probes.task(ref, "band_gap", [ENCODER], "random", None, curve=True)[1]
    return [*argv, "--quiet"]


def fresh_store(source: Path, into: Path) -> Path:
    """A store at ``into`` holding ``source``'s datasets and embeddings (hard links; copies across devices) only."""
    import shutil

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    into.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if (source / name).is_dir():
            shutil.copytree(source / name, into / name, copy_function=link, ignore=shutil.ignore_patterns("*.lock"))
    return into


def _child(argv: list[str], home: Path) -> dict[str, Any] | None:
    import json

    previous = os.environ.get("CRYSTALREP_HOME")
    os.environ["CRYSTALREP_HOME"] = str(home)
    try:
        return run_script(_CHILD, [json.dumps(argv)], BUDGET_S)
    finally:
        if previous is None:
            os.environ.pop("CRYSTALREP_HOME", None)
        else:
            os.environ["CRYSTALREP_HOME"] = previous


def run(quick: bool) -> list[dict[str, Any]]:
    """Every task at every size (the smallest only when quick), each in a fresh process and a fresh store."""
    from benchmarks.bench_pages_scale import scale_home
    from benchmarks.make_scale_dataset import ensure

    source = scale_home()
    os.environ["CRYSTALREP_HOME"] = str(source)
    rows = []
    sizes = tuple(int(v) for v in os.environ.get("CRYSTALREP_SCALE_SIZES", "").split(",") if v.strip()) or SIZES
    for n in sizes[:1] if quick else sizes:
        name = ensure(n)
        for task in TASKS:
            argv = task_argv(task, name)
            with tempfile.TemporaryDirectory(prefix="crystalrep-task-") as tmp:
                got = _child(argv, fresh_store(source, Path(tmp)))
            stage, impl = f"Scaling: task {task} {n:,}", f"crystalrep {argv[0]} (the page's background task)"
            if got is None:
                rows.append(row(stage, impl, "ours", n, float("nan"), f"stopped at the {BUDGET_S / 60:.0f}-minute limit"))
                continue
            if got["code"] != 0:
                rows.append(row(stage, impl, "ours", n, float("nan"), f"failed (exit code {got['code']}): {got['error']}"))
                continue
            # (their peak RSS is not reported: Linux carries the parent's high-water mark into a forked child)
            workers = f" (+ worker processes: CPU {got['workers_cpu']:.0f} s)" if got.get("workers_cpu", 0) >= 0.5 else ""
            rows.append({**row(stage, impl, "ours", n, got["seconds"],
                               f"peak RSS {got['peak_gb']:.2f} GB; CPU {got['cpu']:.0f} s{workers}; "
                               f"load {got['load']:.1f}"),
                         "task": task, "peak_gb": round(got["peak_gb"], 3)})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Each task at the largest N measured."""
    top = max((r["n"] for r in rows), default=0)
    return [f"{r['stage']}: {r['seconds']:.1f} s" + ("" if r["seconds"] == r["seconds"] else f" ({r['note']})")
            for r in rows if r["n"] == top]
