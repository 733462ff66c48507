"""Preparing the lecture: the plan lists what the store lacks, running it leaves nothing to do."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, save_dataset
from crystalrep.lecture import prepare
from crystalrep.lecture.runs import GEOMETRY
from crystalrep.store import Store

SITES = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


@pytest.fixture
def perovskites() -> Dataset:
    """Nine cubic perovskites A∈{Ca, Sr, Ba} × B∈{Ti, Zr, Hf} with a property, saved as 'perov9'."""
    structures, ids = [], []
    for k, a in enumerate(("Ca", "Sr", "Ba")):
        for b in ("Ti", "Zr", "Hf"):
            structures.append(Structure(Lattice.cubic(3.9 + 0.1 * k), [a, b, "O", "O", "O"], SITES))
            ids.append(f"p-{a}{b}O3")
    ds = Dataset.from_structures("perov9", ids, structures, properties={"volume": [s.volume for s in structures]})
    save_dataset(ds)
    return ds


def test_section_encoders() -> None:
    available = ["cgcnn-random", "magpie", "cgcnn@a", "cgcnn@b", "cgcnn@c", "cgcnn@d"]
    assert prepare.pretrained(["magpie"], available) == ["cgcnn@b", "cgcnn@c", "cgcnn@d"]
    assert prepare.pretrained(["magpie", "cgcnn@a"], available) == ["cgcnn@a"]
    sections = prepare.lecture_encoders(["magpie", "soap"], available[:2])
    assert sections[1] == sections[2] == sections[4] == ["magpie", "soap"]
    assert sections[3] == ["cgcnn-random", "magpie", "chgnet"]


def test_plan_estimates_and_running_it_leaves_nothing(perovskites: Dataset) -> None:
    store = Store()
    prep = prepare.Preparation(perovskites, ["magpie"], available=["magpie"], store=store)
    steps = prep.steps()
    labels = [s.label for s in steps]
    assert labels[:3] == ["embed magpie", "embed cgcnn-random", "embed chgnet"]  # embeddings first
    assert {"invariance magpie", "probes section 2", "probes section 3", f"t-SNE {GEOMETRY}", "t-SNE magpie"} <= set(labels)
    assert all(s.seconds > 0 for s in steps)
    seen: list[tuple[int, int, str, float]] = []
    prep.run([s for s in steps if s.label in ("embed magpie", "invariance magpie", "t-SNE magpie")],
             progress=lambda done, total, step, left: seen.append((done, total, step.label, left)))
    assert [s[:3] for s in seen] == [(0, 3, "embed magpie"), (1, 3, "invariance magpie"), (2, 3, "t-SNE magpie"),
                                     (3, 3, "t-SNE magpie")]
    assert seen[-1][3] == 0.0
    left = [s.label for s in prepare.Preparation(perovskites, ["magpie"], available=["magpie"], store=store).steps()]
    assert "embed magpie" not in left and "invariance magpie" not in left and "t-SNE magpie" not in left
    assert f"t-SNE {GEOMETRY}" in left


def test_cli_plan_only_prints_the_estimate(perovskites: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    from crystalrep.cli.main import main

    assert main(["lecture", "prepare", "--dataset", "perov9", "--encoders", "magpie", "--plan-only", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "perov9" and out["estimate_seconds"] > 0
    assert out["steps"][0] == {"section": 1, "step": "embed magpie", "seconds": pytest.approx(out["steps"][0]["seconds"])}
    assert main(["lecture", "prepare", "--dataset", "perov9", "--encoders", "nope", "--plan-only"]) == 2
    assert "unknown encoder(s) nope" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_prepares_everything_with_progress_lines(perovskites: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    from crystalrep.cli.main import main

    assert main(["lecture", "prepare", "--dataset", "perov9", "--encoders", "magpie"]) == 0
    captured = capsys.readouterr()
    assert "lecture: step 1 of" in captured.err and "lecture: done" in captured.err
    assert captured.out.startswith("Prepared ")
    assert prepare.Preparation(perovskites, ["magpie"], available=["magpie"]).steps() == []
