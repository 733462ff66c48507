"""Which crystals of several datasets are the same crystal: the study's structure fingerprint.

Two crystals count as the same when they have the same reduced formula and spglib space group
(``symprec`` 0.1, computed at import), volumes per atom within :data:`VOLUME_TOLERANCE`, and
pymatgen's ``StructureMatcher`` (its default tolerances: ltol 0.2, stol 0.3, 5°, primitive
cells, volumes scaled) says they match. The first three are cheap candidate filters; the matcher
decides. Only rows of *different* datasets are compared: each source's own rows are distinct
entries as it curated them (carbon_24 alone holds 650 AIRSS minima of C in C2/m at similar
densities; comparing them pairwise would cost 10^5 matcher calls and say nothing about leakage).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset

log = logging.getLogger(__name__)

__all__ = ["MATCH_RULE", "VOLUME_TOLERANCE", "Match", "first_occurrences", "volume_per_atom"]

MATCH_VERSION = 1
VOLUME_TOLERANCE = 0.10
MATCH_RULE = (
    "same reduced formula, same spglib space group (symprec 0.1), volume per atom within 10 %, and a "
    "pymatgen StructureMatcher match (default tolerances); compared across datasets only"
)


@dataclass(frozen=True)
class Match:
    """Row ``row`` of dataset ``dataset`` is the crystal ``match_row`` of the earlier ``match_dataset``."""

    dataset: int
    row: int
    match_dataset: int
    match_row: int


def volume_per_atom(dataset: Dataset) -> np.ndarray:
    """Cell volume divided by the number of sites, in Å³ per atom, for every row."""
    return np.abs(np.linalg.det(dataset.lattices)) / np.diff(dataset.offsets).astype(float)


def _table(datasets: Sequence[Dataset]) -> pd.DataFrame:
    frames = []
    for k, ds in enumerate(datasets):
        frames.append(pd.DataFrame({"dataset": k, "row": np.arange(len(ds)), "formula": ds.table["formula"].astype(str),
                                    "spacegroup": ds.table["spacegroup"].astype(int), "vpa": volume_per_atom(ds)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _candidate_groups(table: pd.DataFrame) -> list[pd.DataFrame]:
    """(formula, space group) groups that hold rows of at least two datasets."""
    if table.empty:
        return []
    spread = table.groupby(["formula", "spacegroup"])["dataset"].transform("nunique")
    shared = table[spread > 1]
    return [group.sort_values(["dataset", "row"]) for _, group in shared.groupby(["formula", "spacegroup"])]


def first_occurrences(
    datasets: Sequence[Dataset],
    *,
    matcher: Callable[[Dataset, int, Dataset, int], bool] | None = None,
) -> list[Match]:
    """Every row that repeats a crystal of an earlier dataset in ``datasets`` (order = priority).

    A row is compared with the kept rows of earlier datasets only; the first match wins, so a
    crystal held by datasets 0 and 2 is reported as ``Match(2, r, 0, r0)``.

    Args:
        datasets: Datasets in order of priority (e.g. evaluation sets first, then corpus sources).
        matcher: ``matcher(ds_a, row_a, ds_b, row_b) -> bool`` for candidate pairs; defaults to
            pymatgen's ``StructureMatcher().fit``.

    Returns:
        The repeated rows, sorted by dataset and row.
    """
    match = matcher or _structure_matcher()
    vpa_tol = VOLUME_TOLERANCE
    found: list[Match] = []
    calls = 0
    for group in _candidate_groups(_table(datasets)):
        kept: list[tuple[int, int, float]] = []
        for k, row, vpa in zip(group["dataset"], group["row"], group["vpa"], strict=True):
            hit = None
            for k0, row0, vpa0 in kept:
                if k0 == k or abs(vpa - vpa0) > vpa_tol * min(vpa, vpa0):
                    continue
                calls += 1
                if match(datasets[k], int(row), datasets[k0], int(row0)):
                    hit = (k0, row0)
                    break
            if hit is None:
                kept.append((int(k), int(row), float(vpa)))
            else:
                found.append(Match(int(k), int(row), hit[0], hit[1]))
    log.info("structure matching: %d candidate pairs compared, %d repeats", calls, len(found))
    return sorted(found, key=lambda m: (m.dataset, m.row))


def _identical(first: tuple[np.ndarray, ...], second: tuple[np.ndarray, ...]) -> bool:
    return all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(first, second, strict=True))


def _structure_matcher() -> Callable[[Dataset, int, Dataset, int], bool]:
    import warnings

    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()

    def fit(a: Dataset, i: int, b: Dataset, j: int) -> bool:
        if _identical(a.arrays(i), b.arrays(j)):  # e.g. an evaluation pool and the source it was cut from
            return True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(matcher.fit(a.structure(i), b.structure(j)))

    return fit
