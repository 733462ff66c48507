"""Run the CDSSL study end to end: inputs → corpus → plan → pretraining jobs → evaluation → report.

Every stage is cached or resumable: imports and the corpus are saved datasets, pretraining runs
are background jobs found again by their spec, evaluation rows and embeddings live in the store.
Re-running the same command after an interruption continues where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crystalrep.datasets import Dataset, DatasetError, load_dataset
from crystalrep.store import Store
from crystalrep.study.corpus import build_corpus, discover, load_source, shared_root
from crystalrep.study.evaluate import pool_rows
from crystalrep.study.measure import measure_throughput
from crystalrep.study.plan import StudyPlan, size_plan
from crystalrep.study.pretraining import job_spec, run_jobs
from crystalrep.study.report import save_report
from crystalrep.study.shards import run_sharded
from crystalrep.study.verdict import aggregate, count_verdict

log = logging.getLogger(__name__)

__all__ = ["Prepared", "StudyInputs", "gather_inputs", "prepare_study", "run_study"]

BUILTIN = "builtin"


@dataclass
class StudyInputs:
    """Corpus sources in priority order, and the full datasets the evaluation properties come from."""

    corpus_sources: list[tuple[str, Dataset]]
    eval_sources: dict[str, Dataset]


@dataclass
class Prepared:
    """A sized plan and what it was sized on."""

    plan: StudyPlan
    corpus: Dataset
    statement: dict[str, Any]
    pools: dict[str, Dataset]
    seconds: float


def gather_inputs(plan: StudyPlan, *, shared: str | Path | None = None, workers: int | None = None) -> StudyInputs:
    """The built-in dataset plus the shared datasets the plan names (all, unless it lists some).

    Raises:
        DatasetError: If there is no shared data folder, or it lacks an evaluation dataset.
    """
    root = shared_root(shared)
    if root is None:
        raise DatasetError(f"no shared data folder found ({shared or 'set CRYSTALREP_SHARED_DATA or pass --shared-data'}).")
    sources = {s.name: s for s in discover(root)}
    wanted = {p.source for p in plan.properties} | set(plan.corpus_sources or sources)
    missing = sorted(wanted - set(sources))
    if missing:
        raise DatasetError(f"{root} lacks {', '.join(missing)}; found {', '.join(sources) or 'nothing'}.")
    loaded = {name: load_source(sources[name], workers=workers) for name in sorted(wanted)}
    names = list(plan.corpus_sources) if plan.corpus_sources is not None else sorted(sources)
    return StudyInputs(corpus_sources=[(BUILTIN, load_dataset("default")), *[(n, loaded[n]) for n in names]],
                       eval_sources={p.source: loaded[p.source] for p in plan.properties})


def prepare_study(plan: StudyPlan, inputs: StudyInputs) -> Prepared:
    """Evaluation pools, the corpus without them, this machine's throughput, and the sized plan."""
    start = time.perf_counter()
    pools = {}
    for prop in plan.properties:
        full = inputs.eval_sources[prop.source]
        rows = pool_rows(full, prop.column, cap=plan.pool_cap, seed=plan.fold_seed)
        pools[prop.label] = full.subset(rows, name=f"{full.name}-pool")
    corpus, statement = build_corpus(inputs.corpus_sources, [(label, pool) for label, pool in pools.items()])
    if len(corpus) < 10:
        raise DatasetError(f"the corpus holds {len(corpus)} crystals after deduplication; pretraining needs more.")
    n_corpus = min(len(corpus), plan.corpus_cap or len(corpus))
    throughput = measure_throughput(corpus, list(pools.values()), tasks=plan.tasks, seed=plan.fold_seed)
    sized = size_plan(plan, throughput, n_corpus=n_corpus, pools=[len(p) for p in pools.values()])
    log.info("plan: %d epochs, %d fine-tune steps, estimate %.1f min", sized.epochs, sized.finetune.max_steps,
             sized.estimate["total_minutes"])
    return Prepared(sized, corpus, statement, pools, time.perf_counter() - start)


def _notes(plan: StudyPlan) -> list[str]:
    notes = [
        "Set2Set backbone: element table and convolutions from the (mean-readout) pretraining job, Set2Set "
        "readout and head fresh at the seed. Exact for denoise and masking (their losses use per-atom "
        "features only, no gradient reaches a readout); for contrastive the Set2Set readout is not pretrained.",
        "Random init at seed s is exactly the starting point of the pretraining runs with seed s.",
        "All rows of the evaluation sets are kept out of the corpus (each is a test row in some outer fold), "
        "matched by structure, so their copies in other sources are removed too.",
        "Probe: standardise + ridge, penalty by inner CV (crystalrep.analysis.probes); at N < all the scaler "
        "sees the whole training fold. Outer folds: random KFold and GroupKFold by chemical system.",
    ]
    if plan.finetune_folds < plan.n_splits:
        notes.append(f"To fit the budget, fine-tunes ran on {plan.finetune_folds} of the {plan.n_splits} outer folds per seed, "
                     "rotating with the seed (seed s: folds s, s+1, ... mod 5); probes ran on all folds.")
    if plan.corpus_cap is not None and not plan.smoke:
        notes.append(f"To fit the budget, each pretraining job saw a seeded subset of {plan.corpus_cap} corpus crystals.")
    if not plan.estimate.get("fits", True):
        notes.append(f"The plan exceeds its budget even at its smallest settings: planned "
                     f"{plan.estimate['total_minutes']:.1f} min for a {plan.budget_minutes:g} min budget.")
    if plan.smoke:
        notes.append("Smoke run: a few hundred crystals, one seed, one epoch. It checks the pipeline; its numbers are not a result.")
    return notes


def run_study(plan: StudyPlan, inputs: StudyInputs, *, store: Store | None = None, out: str | Path | None = None,
              command: str = "crystalrep study cdssl") -> dict[str, Any]:
    """Run the whole study and write its report; returns the report (with ``"written"``: where)."""
    store = store if store is not None else Store()
    started, load = time.perf_counter(), os.getloadavg()[0]
    prepared = prepare_study(plan, inputs)
    plan = prepared.plan
    specs = [job_spec(dataset=prepared.corpus.name, task=task, seed=seed, epochs=plan.epochs,
                      max_structures=plan.corpus_cap if plan.corpus_cap and plan.corpus_cap < len(prepared.corpus) else None,
                      options=plan.pretrain_options) for task in plan.tasks for seed in plan.seeds]
    t_jobs = time.perf_counter()
    summaries = run_jobs(specs, workers=plan.workers)
    jobs = {(s["task"], s["seed"]): {**j, "task": s["task"], "seed": s["seed"]} for s, j in zip(specs, summaries, strict=True)}
    t_eval = time.perf_counter()
    rows = run_sharded(plan, prepared.pools, {k: j["checkpoint"] for k, j in jobs.items()}, store=store)
    end = time.perf_counter()
    table = aggregate(rows)
    report = {
        "study": "cdssl", "version": 1, "smoke": plan.smoke, "command": command,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": round(load, 2)},
        "plan": plan.to_dict(),
        "budget": {"estimate": plan.estimate, "actual_minutes": {
            "prepare": prepared.seconds / 60, "pretrain": (t_eval - t_jobs) / 60, "evaluate": (end - t_eval) / 60,
            "total": (end - started) / 60}},
        "corpus": {**prepared.statement, "dataset": prepared.corpus.name, "fingerprint": prepared.corpus.fingerprint},
        "evaluation_sets": [{"label": p.label, "source": p.source, "column": p.column, "unit": p.unit,
                             "n_pool": len(prepared.pools[p.label])} for p in plan.properties],
        "pretraining": list(jobs.values()),
        "table": table.to_dict(orient="records"),
        "verdict": count_verdict(table),
        "skipped": [r for r in rows if "skipped" in r],
        "notes": _notes(plan),
    }
    report["written"] = save_report(report, store=store, out=out)
    return report
