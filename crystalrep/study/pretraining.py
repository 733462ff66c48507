"""The study's pretraining runs, as ordinary background jobs (``crystalrep.jobs.pretraining``).

One job per (task, seed) over the corpus dataset; ``workers`` run at a time, each on one torch
thread. A job whose spec equals the one wanted is reused: done jobs are taken as they are, failed
or cancelled ones are resumed from their last checkpoint (once), running ones are waited for. So
re-running the study after a crash or a reboot continues where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crystalrep.runs import checkpoint_files, job_dir, jobs_home, read_json

log = logging.getLogger(__name__)

__all__ = ["StudyJobError", "job_spec", "run_jobs"]

POLL_S = 2.0
_SPEC_META = ("id", "created")


class StudyJobError(RuntimeError):
    """A pretraining job failed twice (first run and one resume)."""


def job_spec(*, dataset: str, task: str, seed: int, epochs: int, max_structures: int | None,
             options: dict[str, Any]) -> dict[str, Any]:
    """The spec of one study job: CPU, one thread, the plan's epochs and options."""
    from crystalrep.jobs.pretraining import normalize_spec

    return normalize_spec({"dataset": dataset, "task": task, "seed": seed, "epochs": epochs, "device": "cpu",
                           "threads": 1, "max_structures": max_structures, **options})


def _existing(spec: dict[str, Any]) -> str | None:
    """The newest job whose spec equals ``spec`` (``None`` when there is none)."""
    home = jobs_home()
    if not home.is_dir():
        return None
    same = [p.name for p in home.iterdir()
            if {k: v for k, v in read_json(p / "spec.json").items() if k not in _SPEC_META} == spec]
    return max(same, key=lambda j: float(read_json(jobs_home() / j / "spec.json").get("created") or 0), default=None)


def _summary(job_id: str, status: dict[str, Any]) -> dict[str, Any]:
    from crystalrep.pretrain.trainer import read_metrics

    folder = job_dir(job_id)
    files = checkpoint_files(folder)
    metrics = read_metrics(folder)
    return {"job_id": job_id, "state": status.get("state"), "checkpoint": str(files[max(files)]) if files else None,
            "epochs": max(files) if files else 0, "attempts": status.get("attempt"),
            "final_loss": metrics[-1]["loss"] if metrics else None, "final_val_loss": metrics[-1]["val_loss"] if metrics else None,
            "seconds": sum(row["seconds"] for row in metrics),
            "structures_per_s": (sum(r["structures_per_s"] for r in metrics) / len(metrics)) if metrics else None}


def run_jobs(specs: Sequence[dict[str, Any]], *, workers: int, poll_s: float = POLL_S,
             on_update: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run (or reuse, or resume) one job per spec, ``workers`` at a time; wait until all are done.

    Args:
        specs: Job specs from :func:`job_spec`.
        workers: Jobs running at once.
        poll_s: Seconds between status checks.
        on_update: Called as ``on_update(done, total)`` whenever a job finishes.

    Returns:
        Per spec (same order): job id, state, last checkpoint path, epochs, losses, seconds, and
        ``reused`` (the job had finished before this call).

    Raises:
        StudyJobError: If a job fails again after its one resume, or its status is broken.
    """
    from crystalrep.jobs.pretraining import ACTIVE, job_status, resume_job, start_job

    ids: list[str | None] = [_existing(dict(spec)) for spec in specs]
    reused = {k for k, job_id in enumerate(ids) if job_id is not None and job_status(job_id)["state"] == "done"}
    resumed: set[int] = set()
    done: dict[int, dict[str, Any]] = {}
    while len(done) < len(specs):
        running = 0
        for k, job_id in enumerate(ids):
            if k in done or job_id is None:
                continue
            status = job_status(job_id)
            if status["state"] == "done":
                done[k] = {**_summary(job_id, status), "reused": k in reused}
                log.info("job %s done (%d/%d)", job_id, len(done), len(specs))
                if on_update is not None:
                    on_update(len(done), len(specs))
            elif status["state"] in ACTIVE:
                running += 1
            elif k in resumed or status["state"] not in ("failed", "cancelled"):
                raise StudyJobError(f"pretraining job {job_id} is {status['state']}: "
                                    f"{status.get('reason')}; see {Path(job_dir(job_id)) / 'log.txt'}.")
            else:
                log.warning("job %s is %s (%s); resuming it", job_id, status["state"], status.get("reason"))
                resume_job(job_id)
                resumed.add(k)
                running += 1
        for k, job_id in enumerate(ids):
            if job_id is None and running < workers:
                ids[k] = start_job(dict(specs[k]))
                log.info("started job %s: %s seed %s", ids[k], specs[k]["task"], specs[k]["seed"])
                running += 1
        if len(done) < len(specs):
            time.sleep(poll_s)
    return [done[k] for k in range(len(specs))]
