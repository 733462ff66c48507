"""The one embedding loop: batches by crystals and atoms, progress, element checks, float32 rows."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset
from crystalrep.encoders.base import ArrayEncoder, atom_batches, structure_arrays
from crystalrep.structures import StructureError


class CountingEncoder(ArrayEncoder):
    """Row = (atom count, sum of Z, row index); records every batch it is given."""

    name = "counting"
    max_z: ClassVar[int | None] = 50
    atoms_per_batch: ClassVar[int | None] = 6

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, int]] = []

    @property
    def dim(self) -> int:
        return 3

    @property
    def config(self) -> dict[str, Any]:
        return {}

    def _prepare(self, device: Any) -> list[int]:
        return []

    def _embed_batch(self, cells: list[Any], first: int, state: list[int]) -> np.ndarray:
        self.batches.append((first, first + len(cells)))
        state.append(len(cells))
        return np.array([[len(z), z.sum(), first + k] for k, (_, z, _) in enumerate(cells)], dtype=np.float64)

    def _summary(self, state: list[int]) -> dict[str, Any]:
        return {"batches": len(state)}


def crystals(sizes: list[int]) -> list[Structure]:
    return [Structure(Lattice.cubic(3.0 + k), ["Na"] * k, np.arange(3 * k).reshape(k, 3) / (3 * k)) for k in sizes]


def test_atom_batches_cap_crystals_and_atoms() -> None:
    assert atom_batches([1, 1, 1, 1, 1], 2) == [(0, 2), (2, 4), (4, 5)]
    assert atom_batches([4, 4, 9, 1, 1, 1], 10, 8) == [(0, 2), (2, 3), (3, 6)]  # 9 atoms go alone
    assert atom_batches([], 4, 8) == []
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="positive integer"):
            atom_batches([1], bad)


def test_loop_batches_reports_progress_and_writes_float32() -> None:
    enc, seen = CountingEncoder(), []
    structures = crystals([2, 3, 2, 5, 1])
    rows = enc.embed_structures(structures, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert enc.batches == [(0, 2), (2, 3), (3, 4), (4, 5)]  # rows 2-3 split: 2 + 5 atoms > 6
    assert seen == [(2, 5), (3, 5), (4, 5), (5, 5)]
    assert rows.dtype == np.float32 and rows.shape == (5, 3)
    np.testing.assert_array_equal(rows[:, 0], [2, 3, 2, 5, 1])
    np.testing.assert_array_equal(rows[:, 2], np.arange(5))
    assert enc.last_run_info == {"batches": 4}  # no device: not a torch encoder


def test_dataset_rows_equal_structure_rows() -> None:
    structures = crystals([1, 2, 3])
    ds = Dataset.from_structures("three", ["a", "b", "c"], structures)
    enc = CountingEncoder()
    np.testing.assert_array_equal(enc.embed_dataset(ds, batch_size=5), enc.embed_structures(structures))


def test_min_batch_overrides_small_batch_size() -> None:
    class Vectorised(CountingEncoder):
        min_batch: ClassVar[int] = 3

    enc = Vectorised()
    enc.embed_structures(crystals([1, 1, 1, 1]), batch_size=1)
    assert enc.batches == [(0, 3), (3, 4)]


def test_heavy_elements_bad_batch_size_and_disorder_raise() -> None:
    enc = CountingEncoder()
    heavy = Structure(Lattice.cubic(4.0), ["Ba"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="Counting covers elements up to Z=50; structure 1 has heavier ones"):
        enc.embed_structures([*crystals([1]), heavy])
    with pytest.raises(ValueError, match="positive integer"):
        enc.embed_structures(crystals([1]), batch_size=0)
    disordered = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])
    with pytest.raises(StructureError, match="disordered"):
        structure_arrays(disordered)


def test_empty_input_prepares_nothing() -> None:
    enc = CountingEncoder()
    out = enc.embed_structures([])
    assert out.shape == (0, 3) and out.dtype == np.float32 and enc.batches == [] and enc.last_run_info == {}
