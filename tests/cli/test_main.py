"""The analysis commands of the ``crystalrep`` CLI, run in-process on a 30-crystal dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pymatgen.core import Structure

from crystalrep.cli.main import main
from crystalrep.cli.output import progress as _progress
from crystalrep.datasets import Dataset, DatasetError, PropertyInfo, save_dataset

SUBSTITUTIONS = (  # three chemistries per tiny prototype: 15 chemical systems for grouped folds
    ({}, {"Na": "K"}, {"Cl": "Br"}),
    ({}, {"Fe": "Cr"}, {"Fe": "Mo"}),
    ({}, {"Zn": "Cd"}, {"O": "S"}),
    ({}, {"Sr": "Ba"}, {"Ti": "Zr"}),
    ({}, {"Mg": "Ca"}, {"Si": "Ge"}),
)
BROKEN_CIF = "data_broken\n_cell_length_a 4.0\n_cell_length_b abc\nloop_\n_atom_site_label\nNa1\n"


@pytest.fixture(scope="module")
def crystals(tiny_structures: list[Structure]) -> Dataset:
    """30 crystals: each tiny structure × 3 element substitutions × 2 cell volumes, with a density."""
    structures = []
    for base, subs in zip(tiny_structures, SUBSTITUTIONS, strict=True):
        for sub in subs:
            for scale in (1.0, 1.06):
                s = base.copy()
                s.replace_species(sub)
                structures.append(s.scale_lattice(s.volume * scale**3))
    return Dataset.from_structures(
        "cli", [f"c{i:02d}" for i in range(len(structures))], structures,
        properties={"density": [s.density for s in structures]},
        property_info={"density": PropertyInfo("density", unit="g/cm^3", description="mass / volume")},
        meta={"source": "tests/test_cli.py", "license": "CC0", "description": "Substituted tiny crystals."},
    )


@pytest.fixture
def ds(crystals: Dataset) -> Dataset:
    """The dataset saved into this test's temporary CRYSTALREP_HOME."""
    save_dataset(crystals)
    return crystals


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """``crystalrep ARGV --json --quiet`` must succeed; returns the parsed stdout."""
    assert main([*argv, "--json", "--quiet"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """``crystalrep ARGV`` must exit 2 with exactly one line on stderr; returns it."""
    assert main([*argv, "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("crystalrep: ")
    return lines[0]


def test_embed_twice_second_is_a_cache_hit(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, "embed", "--dataset", "cli", "--encoder", "magpie,cgcnn-random")
    assert [(r["encoder"], r["n"], r["dim"], r["cache_hit"]) for r in first] == [
        ("magpie", 30, 132, False), ("cgcnn-random", 30, 128, False)]
    second = run(capsys, "embed", "--dataset", "cli", "--encoder", "magpie")
    assert second[0]["cache_hit"] and second[0]["key"] == first[0]["key"]
    assert main(["embed", "--dataset", "cli", "--encoder", "magpie", "--quiet"]) == 0
    assert "cache hit" in capsys.readouterr().out


def test_user_errors_exit_2_with_one_line(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert "nope" in fails(capsys, "embed", "--dataset", "cli", "--encoder", "magpie,nope")
    assert "no dataset named 'missing'" in fails(capsys, "embed", "--dataset", "missing", "--encoder", "magpie")
    assert "no property 'bandgap'" in fails(capsys, "probe", "--dataset", "cli", "--property", "bandgap",
                                            "--encoders", "magpie")
    assert "n_neighbors" in fails(capsys, "project", "--dataset", "cli", "--encoder", "magpie", "--method", "pca",
                                  "--param", "n_neighbors=5")
    assert "key=value" in fails(capsys, "project", "--dataset", "cli", "--encoder", "magpie", "--method", "tsne",
                                "--param", "perplexity")
    assert "integers" in fails(capsys, "sweep", "--dataset", "cli", "--encoder", "magpie", "--method", "pca",
                               "--seeds", "0,x")
    assert "no column 'colour'" in fails(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie",
                                         "--label", "colour")


def test_passed_through_messages_are_one_capped_line(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A library may echo a megabyte of input or many lines (pymatgen does): stderr gets one line."""
    def echoing() -> None:
        raise ValueError("bad line:\n" + "x" * 1_000_000 + "\r\n\x00\x1b[31m" + "y\n" * 1000)

    monkeypatch.setattr("crystalrep.datasets.list_datasets", echoing)
    line = fails(capsys, "data", "list")
    assert len(line) <= 300 and line.endswith("…") and "\x1b" not in line and "\x00" not in line


@pytest.mark.parametrize("argv", [["data", "show", "tiny\n"], ["embed", "--dataset", "cli", "--encoder", "magpie\n"],
                                  ["jobs", "status", "x\n"], ["data", "delete", "DEFAULT"]])
def test_names_with_line_breaks_or_reserved_cases_exit_2(ds: Dataset, capsys: pytest.CaptureFixture[str],
                                                         argv: list[str]) -> None:
    fails(capsys, *argv)


def test_check_invariance_passes_for_cgcnn_random_and_fails_with_exit_1(
        ds: Dataset, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["check", "invariance", "--dataset", "cli", "--encoder", "cgcnn-random", "--n", "8"]
    out = run(capsys, *argv)
    assert out["passed"] and out["failed"] == [] and out["n"] == 8
    assert out["transforms"]["thermal"]["passed"] is None and out["transforms"]["thermal"]["max"] > 0
    monkeypatch.setattr("crystalrep.analysis.diagnostics.INVARIANCE_TOLERANCE", -1.0)  # nothing can pass
    assert main([*argv, "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "FAILED: rotation, translation, permutation, supercell" in text and "expected non-zero" in text


def test_project_pca_writes_one_row_per_structure(ds: Dataset, capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    out_csv = tmp_path / "coords.csv"
    argv = ["project", "--dataset", "cli", "--encoder", "cgcnn-random", "--method", "pca", "--seed", "3"]
    first = run(capsys, *argv, "--out", str(out_csv))
    assert first["method"] == "pca" and first["seed"] == 3 and not first["cache_hit"] and first["n"] == 30
    coords = pd.read_csv(out_csv)
    assert list(coords.columns) == ["id", "x", "y"] and coords["id"].tolist() == ds.ids
    assert run(capsys, *argv)["cache_hit"]


def test_sweep_returns_grid_times_seeds_runs(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "sweep", "--dataset", "cli", "--encoder", "magpie", "--method", "tsne", "--seeds", "0,1",
              "--grid", "perplexity=4,8", "--grid", "n_iter=100")
    assert len(out["cells"]) == 2 and len(out["runs"]) == 4
    assert [c["perplexity"] for c in out["cells"]] == [4.0, 8.0]
    for cell in out["cells"]:
        assert 0 <= cell["trustworthiness"] <= 1 and 0 <= cell["knn_overlap"] <= 1 and cell["stability"] >= 0


def test_probe_one_row_per_encoder_and_learning_curve(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "probe", "--dataset", "cli", "--property", "density", "--encoders", "magpie,cgcnn-random",
              "--split", "random")
    assert [r["encoder"] for r in out["rows"]] == ["magpie", "cgcnn-random"]
    assert all(math.isfinite(r["r2_mean"]) and r["n"] == 30 for r in out["rows"])
    assert main(["probe", "--dataset", "cli", "--property", "density", "--encoders", "magpie", "--quiet"]) == 0
    assert "R²" in capsys.readouterr().out
    curve = run(capsys, "probe", "--dataset", "cli", "--property", "density", "--encoders", "magpie",
                "--split", "grouped", "--sizes", "10,20,1000")
    assert [r["n_labels"] for r in curve["rows"]] == [10, 20] and curve["skipped_sizes"] == [1000]


def test_neighbours_of_a_dataset_crystal_returns_it_first(ds: Dataset, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    query = tmp_path / "c07.cif"
    ds.structure(7).to(filename=str(query))
    out = run(capsys, "neighbours", "--dataset", "cli", "--encoder", "cgcnn-random", "--query", str(query), "-k", "5")
    first = out["neighbours"][0]
    assert len(out["neighbours"]) == 5 and first["id"] == "c07" and first["distance"] < 1e-4
    broken = tmp_path / "broken.cif"
    broken.write_text(BROKEN_CIF)
    fails(capsys, "neighbours", "--dataset", "cli", "--encoder", "cgcnn-random", "--query", str(broken))


def test_cluster_labels_every_row(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3",
              "--label", "crystal_system", "--sweep", "3,5,100")
    assert len(out["labels"]) == 30 and out["n_clusters"] == len(set(out["labels"]) - {-1})
    assert [r["min_cluster_size"] for r in out["sweep"]] == [3, 5] and out["novelty"]["ids"]
    assert sum(sum(c.values()) for c in out["crosstab"].values()) == 30
    km = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--method", "kmeans", "--k-max", "4")
    assert 2 <= km["n_clusters"] <= 4 and km["noise_fraction"] == 0 and km["ami"] is not None


def test_progress_bar_reopens_when_the_total_changes(capsys: pytest.CaptureFixture[str]) -> None:
    update = _progress("phases", True)
    for done, total in ((5, 10), (10, 10), (1, 3), (3, 3), (2, 7), (4, 9)):
        update(done, total)
    err = capsys.readouterr().err
    assert all(f"/{t}" in err for t in (10, 3, 7, 9))


def test_data_fetch_passes_mirror_and_overwrite(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_fetch(name: str, **kwargs: Any) -> None:
        calls.append({"name": name, **kwargs})
        raise DatasetError("stop here")

    monkeypatch.setattr("crystalrep.sources.fetch.fetch", fake_fetch)
    fails(capsys, "data", "fetch", "perov-5", "--mirror", "http://127.0.0.1:9/data", "--overwrite")
    fails(capsys, "data", "fetch", "perov-5")
    assert [(c["mirror"], c["overwrite"]) for c in calls] == [("http://127.0.0.1:9/data", True), (None, False)]
