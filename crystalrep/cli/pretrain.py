"""``crystalrep pretrain`` and ``crystalrep jobs``: launch, run, watch, cancel and resume.

``pretrain`` always runs inside a job folder: in the foreground it creates one and trains in this
process; with ``--background`` it starts a detached process that runs ``pretrain --job-dir DIR``.
Heavy modules (torch, the trainer) are imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

from crystalrep.cli.output import emit, progress
from crystalrep.pretrain import READOUTS, TASK_NAMES

log = logging.getLogger(__name__)

# CLI option -> PretrainConfig field type (all default to None = "not given")
OPTIONS: dict[str, type] = {
    "task": str, "epochs": int, "batch_size": int, "lr": float, "weight_decay": float, "seed": int,
    "sigma": float, "tau": float, "mask_rate": float, "max_structures": int, "val_fraction": float,
    "grad_clip": float, "device": str, "threads": int, "readout": str, "workers": int, "ray_address": str,
}


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register ``pretrain`` and ``jobs list|status|cancel|resume`` on the main CLI."""
    p = subparsers.add_parser("pretrain", parents=[common_parent], help="self-supervised pretraining of the cgcnn encoder")
    p.add_argument("--dataset", help="dataset name (see `crystalrep data list`)")
    for name, kind in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        if name == "task":
            p.add_argument(flag, choices=TASK_NAMES, help="pretext task (default denoise)")
        elif name == "readout":
            p.add_argument(flag, choices=READOUTS, help="readout of the fresh encoder (default mean)")
        elif name == "workers":
            p.add_argument(flag, type=int, help="data-parallel workers on Ray Train (DDP; default 1 = this process)")
        elif name == "ray_address":
            p.add_argument("--ray", flag, dest=name, nargs="?", const="local", metavar="ADDRESS",
                           help="with --workers: the Ray cluster (HOST:PORT); bare --ray starts one on this machine")
        else:
            p.add_argument(flag, type=kind, help="see crystalrep.pretrain.PretrainConfig")
    p.add_argument("--background", action="store_true", help="run as a detached job and return its id")
    p.add_argument("--job-dir", type=Path, help="run inside this job folder (its spec.json wins)")
    p.add_argument("--resume", action="store_true", help="with --job-dir: continue from its last checkpoint")
    p.set_defaults(func=cmd_pretrain)

    jobs = subparsers.add_parser("jobs", help="list, inspect, cancel or resume background jobs")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    jsub.add_parser("list", parents=[common_parent], help="all jobs").set_defaults(func=cmd_jobs_list)
    for verb, func in (("status", cmd_jobs_status), ("cancel", cmd_jobs_cancel), ("resume", cmd_jobs_resume)):
        q = jsub.add_parser(verb, parents=[common_parent], help=f"{verb} one job")
        q.add_argument("job_id")
        q.set_defaults(func=func)


def _status_line(s: dict[str, Any]) -> str:
    line = f"{s.get('id')}: {s.get('state')}, epoch {s.get('epoch', 0)}/{s.get('epochs', '?')} ({float(s.get('progress') or 0):.0%})"
    if s.get("loss") is not None:
        line += f", loss {s['loss']:.4g}"
    return line + (f" — {s['reason']}" if s.get("reason") else "")


def _raise_cancelled(signum: int, frame: Any) -> None:
    from crystalrep.jobs.pretraining import JobCancelled

    raise JobCancelled


def run_job(folder: Path, *, resume: bool = False, show_progress: bool = False) -> dict[str, Any]:
    """Train the job in ``folder`` in this process, keeping its ``status.json`` current."""
    from crystalrep.datasets import load_dataset
    from crystalrep.jobs.pretraining import JobCancelled, JobRecorder
    from crystalrep.pretrain import PretrainConfig
    from crystalrep.pretrain.trainer import pretrain, sync_metrics
    from crystalrep.runs import read_json

    spec = read_json(folder / "spec.json")
    recorder = JobRecorder(folder)
    bar = progress("pretraining", show_progress)

    def report(done: int, total: int) -> None:
        recorder.set(progress=done / total)
        if bar is not None:
            bar(done, total)

    def on_epoch(row: dict[str, Any]) -> None:
        recorder.update(epoch=row["epoch"], loss=row["loss"], val_loss=row["val_loss"])

    previous = signal.signal(signal.SIGTERM, _raise_cancelled)
    try:
        recorder.start(epochs=spec["epochs"])
        config = PretrainConfig.from_dict({k: v for k, v in spec.items() if k not in ("dataset", "id", "created")})
        history = pretrain(load_dataset(spec["dataset"]), config, out_dir=folder, resume=resume,
                           meta={"job_id": folder.name}, progress=report, on_epoch=on_epoch)
        published = _publish(folder)
        recorder.finish("done", progress=1.0, checkpoint_id=published)
        return {**read_json(folder / "status.json"), "history": history}
    except (JobCancelled, KeyboardInterrupt):  # SIGTERM from `jobs cancel`, or Ctrl-C in the foreground
        _quietly(sync_metrics, folder)
        recorder.finish("cancelled", reason="cancelled by user", checkpoint_id=_quietly(_publish, folder))
        return read_json(folder / "status.json")
    # any crash must reach status.json before the process dies; it is re-raised unchanged
    except Exception as exc:
        _quietly(sync_metrics, folder)
        recorder.finish("failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quietly(fn: Any, folder: Path) -> Any:
    """Best-effort clean-up while a job is already stopping (its own error must not mask the first)."""
    try:
        return fn(folder)
    except (ValueError, OSError) as exc:
        log.warning("clean-up of %s failed: %s", folder, exc)
        return None


def _publish(folder: Path) -> str | None:
    """Copy the last checkpoint into the store as ``checkpoints/<sha-id>.pt`` (the encoder id)."""
    from crystalrep.checkpoint import checkpoint_id, checkpoints_dir
    from crystalrep.runs import checkpoint_files
    from crystalrep.store import atomic_write_bytes

    files = checkpoint_files(folder)
    if not files:
        return None
    last = files[max(files)]
    ckpt_id = checkpoint_id(last)
    target = checkpoints_dir() / f"{ckpt_id}.pt"
    if not target.is_file():
        atomic_write_bytes(target, last.read_bytes())
    return ckpt_id


def cmd_pretrain(args: argparse.Namespace) -> None:
    """``crystalrep pretrain``: self-supervised pretraining of the cgcnn encoder, here or as a background job."""
    from crystalrep.jobs.pretraining import create_job, normalize_spec, start_job
    from crystalrep.runs import jobs_home, read_json
    from crystalrep.store import atomic_write_json

    given = {k: getattr(args, k) for k in ("dataset", *OPTIONS) if getattr(args, k) is not None}
    if args.job_dir is not None:
        folder = Path(args.job_dir)
        spec = read_json(folder / "spec.json")
        if not spec:
            atomic_write_json(folder / "spec.json", {**normalize_spec(given), "id": folder.name})
        elif differing := sorted(k for k, v in given.items() if spec.get(k) != v):
            raise ValueError(f"{folder} already holds a job whose {', '.join(differing)} differ from the options given.")
    elif args.resume:
        raise ValueError("--resume needs --job-dir; to resume a job use `crystalrep jobs resume ID`.")
    elif args.background:
        job_id = start_job(given)
        status = read_json(jobs_home() / job_id / "status.json")
        emit(args, {**status, "id": job_id, "dir": str(jobs_home() / job_id)}, f"started job {job_id}")
        return
    else:
        folder = jobs_home() / create_job(given)
    result = run_job(folder, resume=args.resume, show_progress=not args.quiet)
    emit(args, result, _status_line(result))


def cmd_jobs_list(args: argparse.Namespace) -> None:
    """``crystalrep jobs list``: one status line per background job."""
    from crystalrep.jobs.pretraining import list_jobs

    rows = list_jobs()
    emit(args, rows, "\n".join(f"{_status_line(r)}  [{r.get('task')} on {r.get('dataset')}]" for r in rows) or "no jobs")


def cmd_jobs_status(args: argparse.Namespace) -> None:
    """``crystalrep jobs status``: the status of one job."""
    from crystalrep.jobs.pretraining import job_status

    status = job_status(args.job_id)
    emit(args, status, _status_line(status))


def cmd_jobs_cancel(args: argparse.Namespace) -> None:
    """``crystalrep jobs cancel``: stop one job."""
    from crystalrep.jobs.pretraining import cancel_job

    status = cancel_job(args.job_id)
    emit(args, status, _status_line(status))


def cmd_jobs_resume(args: argparse.Namespace) -> None:
    """``crystalrep jobs resume``: continue one job from its last checkpoint."""
    from crystalrep.jobs.pretraining import resume_job

    status = resume_job(args.job_id)
    emit(args, status, _status_line(status))
