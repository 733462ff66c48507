"""One chunk of an import, processed where it lands (a forked process, a Ray worker, or here).

A :class:`Chunk` carries raw rows (label, id, parse item, property values) and the limits in
force where the import started. :func:`process_chunk` parses each row through the bounded path
of :mod:`crystalrep.importers.parse`, labels the good ones (spglib), and returns a
:class:`ChunkResult`: the rows as one parquet shard, the bytes the dataset fingerprint hashes for
them, the rejected rows (one sentence each) and per-property counts that decide a column's kind.
Property values are stored as text in the shard; the kind is decided once all chunks are seen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crystalrep.datasets.labels import base_table, kind_counts
from crystalrep.datasets.parquet import Arrays, encode, fingerprint_bytes
from crystalrep.importers.bounded import clip
from crystalrep.importers.parse import Parsed, parse_item, warm_imports
from crystalrep.importers.rows import Rejected
from crystalrep.limits import ENV_PREFIX


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of an import, not yet parsed; ``properties`` columns align with ``ids``."""

    index: int
    name: str
    labels: list[str]
    ids: list[str]
    items: list[tuple[str, Any]]
    properties: dict[str, list[Any]]
    max_atoms: int | None = None
    limits_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkResult:
    """What a chunk produced; ``blob`` is empty when no row of it was valid."""

    index: int
    rows: int
    sites: int
    blob: bytes
    fingerprint: bytes
    rejected: list[Rejected]
    counts: dict[str, tuple[int, int]]
    elements: frozenset[int]


def limits_env() -> dict[str, str]:
    """The ``CRYSTALREP_LIMIT_*`` settings of this process, to apply where a chunk is processed."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


@contextmanager
def _limits(env: dict[str, str]) -> Iterator[None]:
    """Apply exactly the limit overrides ``env`` (a Ray worker may not share the importer's environment)."""
    before = limits_env()
    for key in before:
        os.environ.pop(key)
    os.environ.update(env)
    try:
        yield
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(before)


def _plain_structures(parsed: list[Parsed]) -> list[Any]:
    from pymatgen.core import Lattice, Structure

    # Labels are computed on exactly what the dataset stores (no magmoms, no oxidation states).
    return [Structure(Lattice(lat), nums.tolist(), frac) for lat, nums, frac in parsed]


def process_chunk(chunk: Chunk) -> ChunkResult:
    """Parse, validate and label one chunk; see the module docstring."""
    with _limits(chunk.limits_env):
        warm_imports({kind for kind, _ in chunk.items})
        results = [parse_item((label, kind, payload), max_atoms=chunk.max_atoms)
                   for label, (kind, payload) in zip(chunk.labels, chunk.items, strict=True)]
        keep = [k for k, r in enumerate(results) if not isinstance(r, str)]
        rejected = [Rejected(clip(chunk.labels[k], 100), clip(r)) for k, r in enumerate(results) if isinstance(r, str)]
    good: list[Parsed] = [r for r in results if not isinstance(r, str)]
    if not good:
        return ChunkResult(chunk.index, 0, 0, b"", b"", rejected, {}, frozenset())
    ids = [chunk.ids[k] for k in keep]
    table = base_table(ids, _plain_structures(good))
    counts = {}
    for col, values in chunk.properties.items():
        kept = [values[k] for k in keep]
        counts[col] = kind_counts(kept)
        table[col] = kept
    sizes = np.array([len(n) for _, n, _ in good], dtype=np.int64)
    arrays = Arrays(lattices=np.array([lat for lat, _, _ in good], dtype=np.float64).reshape(-1, 3, 3),
                    numbers=np.concatenate([n for _, n, _ in good]).astype(np.int64),
                    frac_coords=np.concatenate([f for _, _, f in good]).astype(np.float64),
                    offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
    return ChunkResult(index=chunk.index, rows=len(ids), sites=int(sizes.sum()),
                       blob=encode(table, arrays, text_columns=list(chunk.properties)),
                       fingerprint=b"".join(fingerprint_bytes(ids, arrays)), rejected=rejected, counts=counts,
                       elements=frozenset(int(z) for z in np.unique(arrays.numbers)))
