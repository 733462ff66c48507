"""``crystalrep study cdssl | show``: the CDSSL pretraining study in one command, and its report.

``cdssl`` imports the shared datasets (once), builds the deduplicated corpus, measures this
machine, sizes epochs and fine-tune steps to ``--budget-minutes``, runs the pretraining jobs in
the background (``workers`` at a time; resumable), evaluates and writes ``report.json`` +
``report.md`` into the store and ``--out``. ``--plan-only`` stops after the plan and prints its
time estimate. Heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from crystalrep.cli.output import emit


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register ``study cdssl`` and ``study show``."""
    study = subparsers.add_parser("study", help="end-to-end studies that write a report")
    sub = study.add_subparsers(dest="study_command", required=True)
    p = sub.add_parser("cdssl", parents=[common_parent], help="does SSL pretraining beat random init? (issue 13)")
    p.add_argument("--budget-minutes", type=float, default=120.0, help="pretraining + evaluation wall clock")
    p.add_argument("--seeds", type=int, default=3, help="pretraining seeds per task (0..SEEDS-1)")
    p.add_argument("--out", help="also write report.json and report.md into this folder")
    p.add_argument("--smoke", action="store_true", help="tiny version: 2 tasks x 1 seed, 1 epoch, N=50, one property")
    p.add_argument("--shared-data", help="shared datasets folder (default ../shared/data or $CRYSTALREP_SHARED_DATA)")
    p.add_argument("--workers", type=int, default=2, help="pretraining jobs at once; evaluation threads")
    p.add_argument("--import-workers", type=int, help="parsing processes for first-time imports")
    p.add_argument("--plan-only", action="store_true", help="measure and size the plan, print its estimate, run nothing")
    p.set_defaults(func=cmd_cdssl)
    e = sub.add_parser("eval-shard", parents=[common_parent], help="(internal) one evaluation process of a study run")
    e.add_argument("--manifest", required=True, help="study manifest key in the store")
    e.add_argument("--shard", type=int, required=True)
    e.add_argument("--shards", type=int, required=True)
    e.set_defaults(func=cmd_eval_shard)
    q = sub.add_parser("show", parents=[common_parent], help="print the newest study report (Markdown)")
    q.add_argument("--smoke", action="store_true", help="the newest smoke report")
    q.set_defaults(func=cmd_show)


def cmd_cdssl(args: argparse.Namespace) -> int | None:
    """``crystalrep study cdssl``: does SSL pretraining beat random init? Plans, runs and reports."""
    from crystalrep.study.plan import StudyPlan
    from crystalrep.study.run import gather_inputs, prepare_study, run_study

    if args.seeds < 1 or args.workers < 1:
        raise ValueError("--seeds and --workers must be at least 1.")
    common = {"workers": args.workers}
    if args.smoke:
        plan = StudyPlan.smoke_plan(**common)
    else:
        plan = StudyPlan(budget_minutes=args.budget_minutes, seeds=tuple(range(args.seeds)), **common)
    inputs = gather_inputs(plan, shared=args.shared_data, workers=args.import_workers)
    command = "crystalrep study cdssl " + (
        "--smoke" if args.smoke else f"--budget-minutes {args.budget_minutes:g} --seeds {args.seeds}")
    command += f" --workers {args.workers}" + (f" --shared-data {shlex.quote(args.shared_data)}" if args.shared_data else "")
    if args.plan_only:
        prepared = prepare_study(plan, inputs)
        est = prepared.plan.estimate
        text = (f"corpus {len(prepared.corpus)} crystals (cap per job {prepared.plan.corpus_cap}); "
                f"{prepared.plan.epochs} epoch(s) per job, "
                f"{prepared.plan.finetune.max_steps} fine-tune steps on {prepared.plan.finetune_folds} folds; "
                f"estimate {est['total_minutes']:.1f} min (pretrain {est['pretrain_s'] / 60:.1f}, embed "
                f"{est['embed_s'] / 60:.1f}, probes {est['probe_s'] / 60:.1f}, fine-tune {est['finetune_s'] / 60:.1f})"
                f"{'' if est['fits'] else ' - over budget'}.\nOn idle cores (rates per CPU second): "
                f"{est['idle']['epochs']} epoch(s), corpus cap {est['idle']['corpus_cap']}, {est['idle']['finetune_steps']} "
                f"fine-tune steps on {est['idle']['finetune_folds']} fold(s) per seed; estimate "
                f"{est['idle']['total_minutes']:.1f} min{'' if est['idle']['fits'] else ' - over budget'}")
        emit(args, {"plan": prepared.plan.to_dict(), "corpus": prepared.statement}, text)
        return None
    report = run_study(plan, inputs, out=args.out, command=command)
    c = report["verdict"]["counts"]
    text = (f"SSL beats random init beyond the spread in {c['better']} of {c['total']} settings "
            f"({c['worse']} worse, {c['within']} within); took {report['budget']['actual_minutes']['total']:.1f} min.\n"
            f"report: {report['written']['store']}" + (f" and {report['written']['out']}" if "out" in report["written"] else ""))
    emit(args, {"verdict": report["verdict"]["counts"], "written": report["written"], "budget": report["budget"]}, text)
    return None


def cmd_eval_shard(args: argparse.Namespace) -> int | None:
    """``crystalrep study eval-shard``: one evaluation process of a study run (internal)."""
    from crystalrep.study.shards import run_shard_from_manifest

    if not 0 <= args.shard < args.shards:
        raise ValueError(f"--shard must lie in 0..{args.shards - 1}, got {args.shard}.")
    n = run_shard_from_manifest(args.manifest, shard=args.shard, shards=args.shards)
    emit(args, {"rows": n}, f"evaluated shard {args.shard}/{args.shards}: {n} rows")
    return None


def cmd_show(args: argparse.Namespace) -> int | None:
    """``crystalrep study show``: print the newest study report."""
    from crystalrep.study import load_report

    report = load_report(smoke=True if args.smoke else None)
    if report is None:
        raise ValueError("no study report yet; run `crystalrep study cdssl` (or --smoke) first.")
    emit(args, {k: v for k, v in report.items() if k != "markdown"}, report["markdown"])
    return None
