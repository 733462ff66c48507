"""``crystalrep embed`` with shards, and its refusals, in-process."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Structure

from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, save_dataset


@pytest.fixture
def saved(tiny_structures: list[Structure]) -> Dataset:
    structures = tiny_structures * 2
    dataset = Dataset.from_structures("ten", [f"t{i}" for i in range(len(structures))], structures)
    save_dataset(dataset)
    return dataset


def test_embed_in_shards_reports_them(saved: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", "--dataset", "ten", "--encoder", "magpie,cgcnn-random", "--shard-rows", "4",
                 "--batch-atoms", "8", "--json", "--quiet"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["encoder"], r["shards"], r["shards_resumed"], r["engine"]) for r in rows] == [
        ("magpie", 3, 0, "local"), ("cgcnn-random", 3, 0, "local")]


@pytest.mark.parametrize("argv", [["--workers", "2"], ["--batch-atoms", "0"], ["--shard-rows", "0"]])
def test_bad_embed_options_are_one_line(saved: Dataset, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", "--dataset", "ten", "--encoder", "magpie", *argv, "--quiet"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--workers", "3", "--batch-size", "4"]])
def test_bad_pretrain_options_are_refused(saved: Dataset, argv: list[str]) -> None:
    assert main(["pretrain", "--dataset", "ten", "--epochs", "1", *argv, "--quiet"]) == 2
