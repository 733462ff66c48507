"""The corpus: cross-source deduplication, exclusion of evaluation crystals, shared-folder discovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, DatasetError
from crystalrep.study.corpus import build_corpus, discover
from crystalrep.study.dedup import first_occurrences
from crystalrep.transforms import random_rotation, supercell


def _dataset(name: str, structures: list[Structure]) -> Dataset:
    return Dataset.from_structures(name, [f"{name}{k}" for k in range(len(structures))], structures)


NACL = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
KCL = Structure(Lattice.cubic(6.29), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
MGO = Structure(Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
SRTIO3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                   [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_same_crystal_in_another_setting_is_matched_and_near_misses_are_not() -> None:
    evaluation = _dataset("ev", [SRTIO3, MGO])
    strained = NACL.copy()
    strained.scale_lattice(NACL.volume * 1.04)  # another functional's relaxation: same crystal
    expanded = MGO.copy()
    expanded.scale_lattice(MGO.volume * 1.3)  # beyond the 10 % volume filter: kept
    source_a = _dataset("a", [random_rotation(supercell(SRTIO3, (2, 1, 1)), seed=0), NACL, KCL])
    source_b = _dataset("b", [strained, expanded, NACL.copy()])
    matches = first_occurrences([evaluation, source_a, source_b])
    pairs = {(m.dataset, m.row): (m.match_dataset, m.match_row) for m in matches}
    assert pairs == {(1, 0): (0, 0), (2, 0): (1, 1), (2, 2): (1, 1)}


def test_rows_of_one_source_are_never_compared() -> None:
    calls = []

    def matcher(a: Dataset, i: int, b: Dataset, j: int) -> bool:
        calls.append((a.name, b.name))
        return True

    same = _dataset("same", [NACL, NACL.copy(), NACL.copy()])
    assert first_occurrences([same], matcher=matcher) == [] and calls == []
    other = _dataset("other", [NACL])
    found = first_occurrences([same, other], matcher=matcher)
    assert [(m.dataset, m.match_dataset) for m in found] == [(1, 0)] and calls == [("other", "same")]


def test_corpus_excludes_evaluation_crystals_and_counts_what_it_dropped(labelled: Dataset, unlabelled: Dataset) -> None:
    pool = labelled.subset(np.arange(40))
    # the second source repeats 10 evaluation crystals and 5 of the first source's crystals
    first = unlabelled.subset(np.arange(30))
    second = Dataset.from_structures("second", [f"s{k}" for k in range(25)],
                                     [pool.structure(k) for k in range(10)] + [first.structure(k) for k in range(5)]
                                     + [unlabelled.structure(k) for k in range(30, 40)])
    corpus, statement = build_corpus([("first", first), ("second", second)], [("eval", pool)])
    rows = {r["source"]: r for r in statement["sources"]}
    assert rows["first"]["kept"] == 30 and rows["first"]["evaluation_repeats"] == 0
    assert rows["second"] == {"source": "second", "dataset": "second", "rows": 25, "evaluation_repeats": 10,
                              "duplicates": 5, "kept": 10}
    assert len(corpus) == statement["n"] == 40
    assert corpus.name.startswith("cdssl-corpus-") and set(corpus.table["source"]) == {"first", "second"}
    assert corpus.ids[30:] == [f"second:s{k}" for k in range(15, 25)]
    again, statement_again = build_corpus([("first", first), ("second", second)], [("eval", pool)])
    assert again.fingerprint == corpus.fingerprint and statement_again == statement  # saved, then loaded


def test_discover_reads_provenance_and_picks_the_data_file(tmp_path: Path) -> None:
    csv = tmp_path / "perovs"
    csv.mkdir()
    (csv / "PROVENANCE.md").write_text("**What it is:** some perovskites.\n\n| license stated in repo | MIT |\n")
    (csv / "val.csv").write_text("cif\n")
    cifs = tmp_path / "cifs"
    (cifs / "sub").mkdir(parents=True)
    (cifs / "PROVENANCE.md").write_text("no summary\n")
    (cifs / "sub" / "a.cif").write_text("data_a\n")
    (tmp_path / "no_provenance").mkdir()
    found = discover(tmp_path)
    assert [(s.name, s.path.name, s.what, s.license) for s in found] == [
        ("cifs", "cifs", "", ""), ("perovs", "val.csv", "some perovskites.", "MIT")]
    (csv / "test.csv").write_text("cif\n")
    with pytest.raises(DatasetError, match="expected CIF files or one CSV/JSON file"):
        discover(tmp_path)
