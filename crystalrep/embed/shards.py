"""Shards of an embedding run: the row ranges, the atom-sized batches inside one, and its work.

A shard is a contiguous range of dataset rows, the unit that is written to disk, resumed and
sent to a Ray worker; by default it lies inside one of the dataset's own blocks (one shard file of
a dataset stored in shards), so embedding reads each file once. Inside a shard, consecutive rows form a batch until the next crystal would
take it past ``batch_atoms`` atoms or ``batch_size`` crystals (a crystal larger than the atom
budget is a batch of its own), so memory per batch follows the atoms, not the row count.
The same plan is used by every engine, so the local and the Ray path compute the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset
    from crystalrep.encoders.base import Encoder

__all__ = ["DEFAULT_BATCH_ATOMS", "DEFAULT_SHARD_ROWS", "Shard", "atom_batches", "check_batches", "dataset_shards", "embed_shard", "merge_run_info",
           "plan_shards"]

DEFAULT_SHARD_ROWS = 1024
DEFAULT_BATCH_ATOMS = 2048


@dataclass(frozen=True)
class Shard:
    """Rows ``start`` (inclusive) to ``stop`` (exclusive) of a dataset."""

    start: int
    stop: int

    @property
    def name(self) -> str:
        """File stem of the shard, unique within one embedding."""
        return f"rows-{self.start:010d}-{self.stop:010d}"

    def __len__(self) -> int:
        return self.stop - self.start


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}.")
    return int(value)


def check_batches(*, batch_atoms: int, batch_size: int) -> None:
    """Raise ``ValueError`` unless both batch budgets are positive integers (before any work starts)."""
    _positive(batch_atoms, "Batch atoms")
    _positive(batch_size, "Batch size")


def plan_shards(bounds: list[tuple[int, int]], max_rows: int = DEFAULT_SHARD_ROWS) -> list[Shard]:
    """Shards of at most ``max_rows`` rows inside the given row blocks (a shard never spans two blocks)."""
    size = _positive(max_rows, "Shard rows")
    return [Shard(start, min(start + size, stop)) for a, stop in bounds for start in range(a, stop, size)]


def dataset_shards(dataset: Dataset, shard_rows: int | None = None) -> list[Shard]:
    """The shards of a run: ``shard_rows``-row ranges, or by default the dataset's own blocks.

    The dataset's blocks (:meth:`~crystalrep.datasets.Dataset.shard_bounds`: its files when it is
    stored in shards) are cut to at most :data:`DEFAULT_SHARD_ROWS` rows, so a shard is read from
    one file and stays small.
    """
    if shard_rows is not None:
        return plan_shards([(0, len(dataset))], shard_rows)
    return plan_shards(dataset.shard_bounds(), DEFAULT_SHARD_ROWS)


def atom_batches(counts: np.ndarray, *, batch_atoms: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges: at most ``batch_size`` crystals and ``batch_atoms`` atoms each.

    Raises:
        ValueError: If a limit is not a positive integer.
    """
    atoms_cap = _positive(batch_atoms, "Batch atoms")
    rows_cap = _positive(batch_size, "Batch size")
    start, atoms = 0, 0
    for i, count in enumerate(counts.tolist()):
        if i > start and (i - start >= rows_cap or atoms + count > atoms_cap):
            yield start, i
            start, atoms = i, 0
        atoms += count
    if start < len(counts):
        yield start, len(counts)


def embed_shard(
    encoder: Encoder,
    part: Dataset,
    *,
    device: str,
    batch_atoms: int = DEFAULT_BATCH_ATOMS,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed one shard's rows in atom-sized batches through the encoder's public API.

    Args:
        encoder: The encoder (loaded once by the caller and reused for every shard).
        part: The shard's rows as a dataset.
        device: A resolved device name.
        batch_atoms: Atom budget of one batch.
        batch_size: Crystal budget of one batch.
        progress: Called with the number of the shard's rows done after each batch.

    Returns:
        ``(array, run_info)``: float32 ``[len(part), dim]`` and the encoder's run facts merged
        over batches (plus ``seconds``).

    Raises:
        ValueError: For a malformed encoder output or a bad limit.
    """
    start_time = time.perf_counter()
    out = np.empty((len(part), encoder.dim), dtype=np.float32)
    infos: list[tuple[int, dict[str, Any]]] = []
    for a, b in atom_batches(np.diff(part.offsets), batch_atoms=batch_atoms, batch_size=batch_size):
        piece = part if (a, b) == (0, len(part)) else part.subset(np.arange(a, b))
        array = encoder.embed_dataset(piece, device=device, batch_size=b - a)
        if array.shape != (b - a, encoder.dim) or array.dtype != np.float32:
            raise ValueError(f"Encoder {encoder.name} returned {array.dtype}{array.shape}, "
                             f"expected float32{(b - a, encoder.dim)}.")
        out[a:b] = array
        infos.append((a, dict(encoder.last_run_info)))
        if progress is not None:
            progress(b)
    return out, {**merge_run_info(infos), "seconds": round(time.perf_counter() - start_time, 3)}


def merge_run_info(parts: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """One run-info dict from per-batch (or per-shard) ones, each given with its first row.

    Lists under keys ending in ``_rows`` hold row numbers of that part and are shifted to
    whole-run rows; other lists are joined without repeats; a scalar is kept when every part
    agrees and dropped otherwise (a per-batch count says nothing about the whole run).
    """
    merged: dict[str, Any] = {}
    dropped: set[str] = set()
    for offset, info in parts:
        for key, value in info.items():
            if key == "seconds":
                continue
            if isinstance(value, list):
                items = [offset + int(v) for v in value] if key.endswith("_rows") else value
                current = merged.setdefault(key, [])
                current.extend(v for v in items if key.endswith("_rows") or v not in current)
            elif key not in dropped:
                if key in merged and merged[key] != value:
                    del merged[key]
                    dropped.add(key)
                else:
                    merged[key] = value
    return merged
