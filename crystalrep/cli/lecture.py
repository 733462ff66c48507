"""``crystalrep lecture prepare``: compute every section of the Lecture page ahead of the talk.

The Lecture page's "Prepare all sections" button runs this command as a background task and
shows its last stderr line, so the progress lines below are the page's progress too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crystalrep.cli.output import emit, names

PROGRESS_PREFIX = "lecture:"


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register ``lecture prepare``."""
    lecture = subparsers.add_parser("lecture", help="the Lecture page's demonstrations")
    sub = lecture.add_subparsers(dest="lecture_command", required=True)
    p = sub.add_parser("prepare", parents=[common_parent],
                       help="compute every lecture section (embeddings, invariance, probes, t-SNE maps) into the store")
    p.add_argument("--dataset", required=True, help="dataset name")
    p.add_argument("--encoders", required=True, help="comma-separated encoders (the Lecture page's sidebar choice)")
    p.add_argument("--plan-only", action="store_true", help="print what is missing and the time estimate; compute nothing")
    p.set_defaults(func=cmd_prepare)


def minutes(seconds: float) -> str:
    """``"about 40 s"`` / ``"about 3 min"``."""
    return f"about {max(seconds, 1.0):.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def cmd_prepare(args: argparse.Namespace) -> None:
    """``crystalrep lecture prepare``: compute the Lecture page's sections into the store (or plan them)."""
    from crystalrep.datasets import load_dataset
    from crystalrep.encoders import available_encoders
    from crystalrep.lecture.prepare import Preparation, Step

    dataset = load_dataset(args.dataset)
    chosen = names(args.encoders, "--encoders")
    available = available_encoders(include_checkpoints=True)
    unknown = [n for n in chosen if n not in available and not n.startswith("cgcnn@")]
    if unknown:
        raise ValueError(f"unknown encoder(s) {', '.join(unknown)}; valid encoders are: {', '.join(available)}.")
    prep = Preparation(dataset, chosen, available=available)
    steps = prep.steps()
    total = sum(s.seconds for s in steps)
    plan = [{"section": s.section, "step": s.label, "seconds": round(s.seconds, 1)} for s in steps]
    if args.plan_only:
        text = "\n".join(f"  {s['section']}  {s['step']}  ~{s['seconds']:.0f} s" for s in plan)
        emit(args, {"dataset": dataset.name, "steps": plan, "estimate_seconds": round(total, 1)},
             f"{len(steps)} step(s) missing, {minutes(total)}:\n{text}" if steps else "Every section is prepared.")
        return

    def report(done: int, n: int, step: Step, left: float) -> None:
        what = "done" if done == n else f"step {done + 1} of {n}: {step.label} (section {step.section})"
        print(f"{PROGRESS_PREFIX} {what}; {minutes(left)} left" if done < n else f"{PROGRESS_PREFIX} {what}",
              file=sys.stderr, flush=True)

    seconds = prep.run(steps, progress=report)
    failed = "; ".join(f"{n}: {why}" for n, why in prep.failures.items())
    emit(args, {"dataset": dataset.name, "steps": plan, "estimate_seconds": round(total, 1),
                "seconds": round(seconds, 1), "failures": prep.failures},
         f"Prepared {len(steps)} step(s) of the lecture on {dataset.name} in {seconds:.0f} s (estimate "
         f"{total:.0f} s)." + (f" Left out: {failed}" if failed else ""))
