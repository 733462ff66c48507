"""The background-task benchmark: a page's task really runs, in a store holding only the inputs, and the source store is left as it was."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import pytest
from pymatgen.core import Structure

from benchmarks import bench_tasks_scale as bench
from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, save_dataset


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture
def source(tiny_structures: list[Structure]) -> tuple[Path, str]:
    """A store with a 20-crystal dataset and its magpie embedding (and nothing a task writes)."""
    structures = []
    for s in tiny_structures:
        for scale in (0.97, 1.0, 1.03, 1.06):
            structures.append(s.copy().scale_lattice(s.volume * scale**3))
    save_dataset(Dataset.from_structures("tasks", [f"t{i:02d}" for i in range(len(structures))], structures,
                                         meta={"source": "tests", "license": "CC0", "description": "tiny"}))
    assert main(["embed", "--dataset", "tasks", "--encoder", "magpie", "--quiet"]) == 0
    return Path(os.environ["CRYSTALREP_HOME"]), "tasks"


def test_a_task_runs_in_a_fresh_store_that_shares_only_the_inputs(source: tuple[Path, str], tmp_path: Path) -> None:
    home, name = source
    before = _digest(home)
    argv = bench.task_argv("precision", name)
    assert argv[:2] == ["precision", "--dataset"] and "--quiet" in argv
    fresh = bench.fresh_store(home, tmp_path / "fresh")
    assert sorted(p.name for p in fresh.iterdir()) == sorted(n for n in bench.SHARED if (home / n).is_dir())
    got = bench._child(argv, fresh)
    assert got is not None and got["code"] == 0 and got["seconds"] > 0 and got["peak_gb"] > 0
    assert (fresh / "precision").is_dir() and not (home / "precision").exists()  # results only in the fresh store
    assert _digest(home) == before  # the hard-linked inputs were read, never rewritten


def test_a_failing_task_is_reported_as_failed_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "SIZES", (1_000,))
    monkeypatch.setattr(bench, "TASKS", ("precision",))
    monkeypatch.setattr("benchmarks.make_scale_dataset.ensure", lambda n: "missing")
    monkeypatch.setattr(bench, "task_argv", lambda task, name: ["precision", "--dataset", name, "--encoders", "magpie"])
    rows = bench.run(quick=False)
    assert len(rows) == 1 and math.isnan(rows[0]["seconds"]) and rows[0]["note"].startswith("failed (exit code 2)")
    assert "missing" in rows[0]["note"]
