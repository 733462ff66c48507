"""crystalrep.importers.matbench: matbench JSON streamed row by row equals the whole-file import."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
from pymatgen.core import Structure

from crystalrep.datasets import DatasetError
from crystalrep.importers.api import import_path
from crystalrep.importers.bounded import DepthScan, json_depth
from crystalrep.importers.matbench import matbench_stream
from crystalrep.importers.stream import import_streaming


def _table(structures: list[Structure], *, index: list | None = None) -> dict:
    rows: list = [[s.as_dict(), -0.5 * k, f"c{k % 2}", {"not": "scalar"}] for k, s in enumerate(structures)]
    rows.insert(2, [structures[0].as_dict(), 1.0])  # too few cells
    rows.insert(4, [{"lattice": "nonsense"}, 2.0, "c0", None])  # not a structure
    return {"index": index if index is not None else [f"i{k}" for k in range(len(rows))],
            "columns": ["structure", "gap", "phase", "meta"], "data": rows}


def _write(path: Path, obj: object) -> Path:
    text = json.dumps(obj)
    path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())
    return path


@pytest.mark.parametrize("filename", ["set.json", "set.json.gz"])
def test_streaming_equals_the_whole_file_import(tmp_path, tiny_structures, filename):
    path = _write(tmp_path / filename, _table(tiny_structures))
    whole = import_path(path, name="whole", workers=1)
    report = import_streaming(path, name="set", workers=2, chunk_rows=2)
    ds = report.dataset
    assert ds.fingerprint == whole.dataset.fingerprint and ds.ids == whole.dataset.ids
    assert ds.properties == whole.dataset.properties and "meta" not in ds.properties  # dict cells carry none
    assert ds.table["gap"].tolist() == whole.dataset.table["gap"].tolist()
    assert report.rejected == whole.rejected and [r.row for r in report.rejected] == ["row 2 (id set-i2)", "row 4 (id set-i4)"]
    assert report.format == "matbench-json" and len(ds) == len(tiny_structures)


def test_an_index_that_does_not_fit_falls_back_to_row_numbers(tmp_path, tiny_structures):
    path = _write(tmp_path / "odd.json", _table(tiny_structures, index=[1, 2]))
    stream = matbench_stream(path, source="s")
    assert [ident for _, ident, _, _ in stream.rows][:2] == ["odd-0", "odd-1"]
    assert import_streaming(path, name="odd", workers=1).dataset.ids == import_path(path, name="w", workers=1).dataset.ids


def test_nan_goes_to_the_whole_file_reader(tmp_path, tiny_structures):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(_table(tiny_structures[:3])).replace("-0.5", "NaN"))
    ds = import_streaming(path, name="nan", workers=1).dataset
    assert ds.fingerprint == import_path(path, name="w", workers=1).dataset.fingerprint


@pytest.mark.parametrize("content", ['{"columns": 5, "data": 3}', '{"columns": ["structure"], "data": 3}',
                                     '{"columns": ["a", "b"], "data": [[1, 2]]}', "[1, 2]", '"text"', "{",
                                     '{"data": [[1]], "columns": ["structure"]'])
def test_wrong_shapes_are_one_sentence(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match="bad.json") as info:
        import_streaming(path, name="bad", workers=1)
    assert "\n" not in str(info.value) and len(str(info.value)) <= 300


@pytest.mark.parametrize("depth", [65, 200_000])
def test_deep_nesting_is_refused_before_ijson_reads_it(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_text('{"columns": ["structure"], "data": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(DatasetError, match="deep.json: nests JSON deeper than allowed.*max_json_depth"):
        matbench_stream(path, source="s")


def test_rows_over_the_limit_are_refused(tmp_path, tiny_structures, monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ROWS", "3")
    path = _write(tmp_path / "rows.json", _table(tiny_structures))
    with pytest.raises(DatasetError, match="rows.json: has more than 3 rows.*max_rows"):
        matbench_stream(path, source="s")


@pytest.mark.parametrize("block", [1, 2, 3, 7])
def test_depth_scan_fed_in_blocks_equals_the_whole_scan(block):
    raw = json.dumps({"a\\": "[[[", "b": "x\\", "c": [[{"d": '\\"]]'}]], "e": '\\\\\"{{'}).encode()
    scan = DepthScan()
    for start in range(0, len(raw), block):
        scan.feed(raw[start:start + block])
    assert scan.feed(b"", final=True) == json_depth(raw) == 4


@pytest.mark.slow
def test_memory_does_not_grow_with_the_rows(tmp_path, tiny_structures):
    peaks = []
    for copies in (200, 2_000):  # files of about 1.5 and 15 MB, beyond one block of the depth scan
        path = _write(tmp_path / f"m{copies}.json", _table(tiny_structures * copies))
        tracemalloc.start()
        try:
            for _ in matbench_stream(path, source="s").rows:
                pass
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0] + 500_000, peaks


@pytest.mark.shared
@pytest.mark.slow
def test_matbench_phonons_streams_like_the_whole_file(shared_data):
    path = shared_data / "matbench_phonons" / "matbench_phonons.json.gz"
    whole = import_path(path, name="whole", workers=1)
    report = import_streaming(path, name="phonons", workers=2)
    assert len(report.dataset) == 1265 and report.rejected == whole.rejected == []
    assert report.dataset.fingerprint == whole.dataset.fingerprint and report.dataset.properties == whole.dataset.properties
