"""An uploaded query crystal goes through the same bounded reader as every other input."""

from __future__ import annotations

import gzip

import pytest

from crystalrep.analysis.retrieval import read_query
from crystalrep.structures import StructureError


def test_a_gzip_bomb_query_is_one_sentence() -> None:
    bomb = gzip.compress(b"#" * 60_000_000)  # ~60 kB that inflates to 60 MB
    with pytest.raises(StructureError, match=r"bomb\.cif\.gz: inflates to more than") as err:
        read_query(bomb, filename="bomb.cif.gz")
    assert "\n" not in str(err.value) and len(str(err.value)) <= 300


def test_a_broken_gzip_query_is_one_sentence() -> None:
    with pytest.raises(StructureError, match="is not a valid gzip file"):
        read_query(b"not gzip at all", filename="q.cif.gz")
