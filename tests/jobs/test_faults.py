"""``kill -9`` of a pretraining job in the middle of an epoch's writes: nothing half-written is listed
or read, the job shows as failed, and resuming completes every epoch exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.checkpoint import load_checkpoint
from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, save_dataset
from crystalrep.jobs.pretraining import DIED, create_job, job_status
from crystalrep.runs import checkpoint_files, job_checkpoint, jobs_home

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = {"dataset": "tiny", "task": "masking", "epochs": 3, "batch_size": 4, "threads": 1,
                        "max_structures": 8, "val_fraction": 0.25}

# `crystalrep pretrain --job-dir DIR`, SIGKILLed at the 4th checkpoint write: epoch 2's training
# state is on disk, its encoder checkpoint and metrics row are not.
_KILLED_IN_EPOCH_2 = """
import os, signal, sys
from crystalrep.pretrain import records
real, calls = records.save_checkpoint, [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
records.save_checkpoint = dying
from crystalrep.cli.main import main
sys.exit(main(["pretrain", "--job-dir", sys.argv[1], "--quiet"]))
"""


@pytest.fixture
def job() -> str:
    salts = [("Na", "Cl"), ("K", "Cl"), ("Mg", "O"), ("Li", "F"), ("Na", "F"), ("K", "Br"), ("Ca", "O"), ("Cs", "Cl")]
    structures = [Structure(Lattice.cubic(4.0 + 0.1 * k), [a, b], [[0, 0, 0], [0.5] * 3]) for k, (a, b) in enumerate(salts)]
    save_dataset(Dataset.from_structures("tiny", [f"c{k}" for k in range(len(structures))], structures))
    return create_job(SPEC)


def test_kill_9_during_an_epoch_then_resume(job, capsys):
    from crystalrep.pretrain.trainer import read_metrics

    folder = jobs_home() / job
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", _KILLED_IN_EPOCH_2, str(folder)], env=env, cwd=folder,
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]

    status = job_status(job)
    assert status["state"] == "failed" and status["reason"] == DIED
    assert list(checkpoint_files(folder)) == [1]  # epoch 2 never became visible
    assert not [p for p in (folder / "checkpoints").iterdir() if p.name.startswith(".")]
    assert load_checkpoint(job_checkpoint(job)).meta["epoch"] == 1
    assert [int(r["epoch"]) for r in read_metrics(folder)] == [1]
    assert main(["jobs", "list"]) == 0 and job in capsys.readouterr().out

    assert main(["pretrain", "--job-dir", str(folder), "--resume", "--quiet"]) == 0  # the re-run
    assert job_status(job)["state"] == "done"
    assert list(checkpoint_files(folder)) == [1, 2, 3]
    assert [int(r["epoch"]) for r in read_metrics(folder)] == [1, 2, 3]
    assert [load_checkpoint(p).meta["epoch"] for p in checkpoint_files(folder).values()] == [1, 2, 3]
