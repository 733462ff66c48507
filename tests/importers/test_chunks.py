"""crystalrep.importers.chunks: one chunk parsed, labelled and encoded where it lands."""

from __future__ import annotations

import hashlib
import os

import pytest

from crystalrep.datasets import Dataset
from crystalrep.datasets.parquet import decode, fingerprint_of
from crystalrep.importers.chunks import Chunk, process_chunk


def _chunk(structures, env=None, extra=()):
    items = [("cif", s.to(fmt="cif")) for s in structures] + [("cif", text) for text in extra]
    n = len(items)
    return Chunk(index=3, name="t", labels=[f"row {i}" for i in range(n)], ids=[f"i{i}" for i in range(n)],
                 items=items, properties={"e": [str(i) for i in range(n)], "k": ["a"] * n}, limits_env=env or {})


def test_a_chunk_becomes_a_shard_and_fingerprint_bytes(tiny_structures):
    result = process_chunk(_chunk(tiny_structures, extra=["data_x\n_cell_length_a 1\n"]))
    whole = Dataset.from_structures("t", [f"i{i}" for i in range(5)], tiny_structures)
    assert result.index == 3 and result.rows == 5 and result.sites == len(whole.numbers)
    assert [r.row for r in result.rejected] == ["row 5"] and "\n" not in result.rejected[0].reason
    table, arrays = decode(result.blob, "t")
    assert hashlib.sha256(result.fingerprint).hexdigest() == fingerprint_of(table["id"].tolist(), arrays)
    assert table["id"].tolist() == whole.ids and table["e"].tolist() == ["0", "1", "2", "3", "4"]
    assert table["spacegroup"].tolist() == whole.table["spacegroup"].tolist()
    assert result.counts == {"e": (5, 5), "k": (0, 5)} and result.elements == frozenset(whole.numbers.tolist())


def test_the_importers_limits_travel_with_the_chunk(tiny_structures, monkeypatch):
    monkeypatch.delenv("CRYSTALREP_LIMIT_MAX_ATOMS", raising=False)
    result = process_chunk(_chunk(tiny_structures, env={"CRYSTALREP_LIMIT_MAX_ATOMS": "2"}))
    assert result.rows == 2 and len(result.rejected) == 3
    assert all("CRYSTALREP_LIMIT_MAX_ATOMS" in r.reason for r in result.rejected)
    assert "CRYSTALREP_LIMIT_MAX_ATOMS" not in os.environ  # restored after the chunk


@pytest.mark.parametrize("extra", [["garbage"], [""]])
def test_a_chunk_without_a_valid_row_writes_no_shard(extra):
    result = process_chunk(_chunk([], extra=extra))
    assert result.rows == 0 and result.blob == b"" and len(result.rejected) == 1
