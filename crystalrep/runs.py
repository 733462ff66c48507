"""Where runs live: the folders of pretraining jobs and background tasks, and their checkpoints.

One small module on the ground floor so that the trainer (which writes checkpoints), the encoder
registry (which reads them) and the job launcher (which creates the folders) agree on the layout
without importing each other:

- ``<home>/jobs/<job-id>/``: ``spec.json``, ``status.json``, ``log.txt``, ``metrics.csv``,
  ``checkpoints/epoch-NNN.pt``;
- ``<home>/background/<key>/``: ``spec.json``, ``pid.json``, ``stdout.txt``, ``log.txt``, ``exit.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from crystalrep.store import crystalrep_home, inside

JOB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
TASK_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,119}")
CHECKPOINT_GLOB = "epoch-*.pt"


def jobs_home() -> Path:
    """Folder of all pretraining jobs: ``<crystalrep_home()>/jobs``."""
    return crystalrep_home() / "jobs"


def tasks_home() -> Path:
    """Folder of all background tasks: ``<crystalrep_home()>/background``."""
    return crystalrep_home() / "background"


def valid_job_id(job_id: object) -> bool:
    """Whether ``job_id`` is a well-formed job id (the whole string; no path separators)."""
    return isinstance(job_id, str) and JOB_ID_RE.fullmatch(job_id) is not None and job_id not in (".", "..")


def job_dir(job_id: str) -> Path:
    """Folder of one existing job; raises ``ValueError`` when the id is malformed or unknown."""
    if not valid_job_id(job_id):
        raise ValueError(f"{str(job_id)[:80]!r} is not a valid job id.")
    folder = inside(jobs_home(), jobs_home() / job_id)
    if not (folder / "spec.json").is_file():
        raise ValueError(f"no job with id {job_id!r} under {jobs_home()}.")
    return folder


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing, unreadable or non-object file gives ``{}``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def checkpoint_name(epoch: int) -> str:
    """File name of the checkpoint written after ``epoch``."""
    return f"epoch-{epoch:03d}.pt"


def checkpoint_files(folder: Path) -> dict[int, Path]:
    """Epoch → checkpoint file in a job folder (``checkpoints/epoch-NNN.pt``), oldest first."""
    found = {}
    for path in (folder / "checkpoints").glob(CHECKPOINT_GLOB):
        digits = path.stem.removeprefix("epoch-")
        if digits.isdigit():
            found[int(digits)] = path
    return dict(sorted(found.items()))


def job_checkpoint(ref: str) -> Path:
    """Resolve ``<job-id>`` (last epoch) or ``<job-id>:<epoch>`` to a checkpoint file."""
    job_id, _, epoch = ref.partition(":")
    files = checkpoint_files(job_dir(job_id))
    if not files:
        raise ValueError(f"job {job_id} has no checkpoint yet.")
    if not epoch:
        return files[max(files)]
    if not epoch.isdigit() or int(epoch) not in files:
        raise ValueError(f"job {job_id} has no checkpoint for epoch {epoch!r}; epochs: {', '.join(map(str, files))}.")
    return files[int(epoch)]


def jobs_with_checkpoints() -> list[str]:
    """Ids of pretraining jobs that have written at least one checkpoint, in id order."""
    home = jobs_home()
    if not home.is_dir():
        return []
    return [p.name for p in sorted(home.iterdir())
            if valid_job_id(p.name) and (p / "spec.json").is_file() and checkpoint_files(p)]
