"""crystalrep.importers.streams: the two-pass CSV stream keeps the columns a whole-file read keeps."""

from __future__ import annotations

import pandas as pd
import pytest

from crystalrep.datasets import DatasetError
from crystalrep.importers.streams import csv_stream
from crystalrep.importers.tabular import csv_rows


@pytest.fixture()
def mixed_csv(tmp_path, tiny_structures):
    n = 12
    cif = tiny_structures[0].to(fmt="cif")
    df = pd.DataFrame({
        "id": [f"x{i}" for i in range(n)],
        "cif": [cif] * (n - 1) + [""],
        "formula": ["NaCl"] * n,
        "lattice": ["1"] * n,  # a reserved name: renamed
        "gap": [str(i) for i in range(n)],
        "notes": ["several words in one cell here"] * n,
        "tags": ["[1, 2]"] * (n - 1) + ["x"],
        "blank": [""] * n,
        "half": ["1", ""] * (n // 2),
        "gap ": ["a"] * n,
    })
    path = tmp_path / "mixed.csv"
    df.to_csv(path)
    with open(path, "a") as fh:
        fh.write("99,too,few\n")
    return path


def test_the_stream_keeps_and_drops_what_the_whole_file_reader_does(mixed_csv):
    whole = csv_rows(mixed_csv, source="s")
    stream = csv_stream(mixed_csv)
    rows = list(stream.rows)
    assert stream.meta["dropped_columns"] == whole.meta["dropped_columns"]
    assert stream.columns == list(whole.properties) and stream.descriptions == whole.descriptions
    assert [r[1] for r in rows] == whole.ids and [r[0] for r in rows] == whole.labels
    assert [r[2] for r in rows] == whole.items
    assert {c: [r[3][c] for r in rows] for c in stream.columns} == whole.properties
    assert set(stream.rejected) == set(whole.rejected) and len(stream.rejected) == 2  # the empty cif, the short row
    assert stream.total == 12  # rows with every field, counted before any is yielded


def test_the_stream_is_bounded_like_the_whole_file_reader(tmp_path, monkeypatch):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match="is empty"):
        csv_stream(empty)
    no_cif = tmp_path / "nocif.csv"
    no_cif.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="has no 'cif' column"):
        csv_stream(no_cif)
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(50)) + ",cif\n")
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_COLUMNS", "20")
    with pytest.raises(DatasetError, match="max_columns"):
        csv_stream(wide)
    monkeypatch.delenv("CRYSTALREP_LIMIT_MAX_COLUMNS")
    big = tmp_path / "big.csv"
    big.write_text("cif,x\n" + "a,1\n" * 5000)
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_DECOMPRESSED_BYTES", "10000")  # the whole-table bound: not a stream's
    assert csv_stream(big).total == 5000
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_STREAM_BYTES", "10000")
    with pytest.raises(DatasetError, match="max_stream_bytes"):
        csv_stream(big)
