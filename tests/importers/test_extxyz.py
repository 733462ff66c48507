"""crystalrep.importers.extxyz: frame by frame, bounded, broken frames cost only themselves."""

from __future__ import annotations

import gzip
import io
import tracemalloc
import warnings
from pathlib import Path

import pytest
from pymatgen.core import Structure

from crystalrep.datasets import DatasetError
from crystalrep.importers.api import import_path
from crystalrep.importers.extxyz import Frame, extxyz_stream, first_frame, scan_frames
from crystalrep.importers.rows import Rejected
from crystalrep.importers.stream import import_streaming


def _frame(s: Structure, **info: object) -> str:
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(s)
    atoms.info.update(info)
    buf = io.StringIO()
    write(buf, atoms, format="extxyz")
    return buf.getvalue()


def _one_sentence(reason: str) -> None:
    assert reason.endswith(".") and "\n" not in reason and len(reason) <= 300 and "Traceback" not in reason, reason


BROKEN = {  # frame -> what its sentence says
    "not a count\nLattice=\"3 0 0 0 3 0 0 0 3\"\nFe 0 0 0\n": "should hold the frame's atom count",
    "900\nLattice=\"3 0 0 0 3 0 0 0 3\"\nFe 0 0 0\n": "above the limit of 500 (max_atoms)",
    "2\nLattice=\"3 0 0 0 3 0 0 0 3\" Properties=species:S:1:pos:R:3\nFe zero 0 0\nFe 0.5 0.5 0.5\n": "not readable",
    "1\nenergy=1.0\nFe 0 0 0\n": "no periodic cell",
    "1\nLattice=\"3 0 0 0 3\" energy=1.0\nFe 0 0 0\n": "comment line",
}


@pytest.fixture()
def mixed(tmp_path: Path, tiny_structures: list[Structure]) -> Path:
    """Good frames (ids g0..g4) with a broken frame of each kind between them."""
    parts = []
    for k, s in enumerate(tiny_structures):
        parts.append(_frame(s, material_id=f"g{k}", energy=-1.0 * k, phase=f"p{k % 2}"))
        parts.append(list(BROKEN)[k % len(BROKEN)])
    path = tmp_path / "mixed.extxyz"
    path.write_text("".join(parts))
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_broken_frames_between_good_ones_cost_only_themselves(mixed, tiny_structures, workers):
    report = import_streaming(mixed, name="mixed", workers=workers, chunk_rows=2)
    whole = import_path(mixed, name="whole", workers=1)
    assert report.dataset.ids == [f"g{k}" for k in range(len(tiny_structures))]
    assert report.dataset.fingerprint == whole.dataset.fingerprint and report.dataset.properties == whole.dataset.properties
    assert report.dataset.table["energy"].tolist() == [-1.0 * k for k in range(len(tiny_structures))]
    assert sorted(report.rejected, key=lambda r: r.row) == sorted(whole.rejected, key=lambda r: r.row)
    by_frame = {r.row: r.reason for r in report.rejected}
    assert sorted(by_frame) == [f"frame {2 * k + 1}" for k in range(len(tiny_structures))]
    for k, needle in enumerate(list(BROKEN)[: len(tiny_structures)]):
        assert BROKEN[needle] in by_frame[f"frame {2 * k + 1}"], by_frame
    for reason in by_frame.values():
        _one_sentence(reason)


def test_a_count_smaller_than_the_atoms_resyncs_at_the_next_frame(tmp_path, tiny_structures):
    good = [_frame(tiny_structures[k], material_id=f"g{k}") for k in (1, 0, 2)]
    lines = good[1].splitlines(keepends=True)
    short = "".join(["1\n", *lines[1:]])  # declares 1 atom, lists 2: the extra atom line is no count
    path = tmp_path / "short.xyz"
    path.write_text(good[0] + short + good[2])
    report = import_streaming(path, name="short", workers=1)
    assert report.dataset.ids == ["g1", "g0", "g2"]  # the short frame holds the Na its count allows
    assert [r.row for r in report.rejected] == ["frame 2"]
    assert report.rejected[0].reason.startswith("line 7 should hold the frame's atom count, not 'Cl ")
    assert report.rejected[0].reason.endswith("; line 7 was skipped.")


def test_a_truncated_last_frame_is_reported(tmp_path, tiny_structures):
    text = _frame(tiny_structures[0], material_id="a") + _frame(tiny_structures[2], material_id="b")
    path = tmp_path / "cut.xyz"
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1)])  # drop the last atom line
    report = import_streaming(path, name="cut", workers=1)
    assert report.dataset.ids == ["a"] and [r.row for r in report.rejected] == ["frame 1"]
    assert "only 3 lines follow" in report.rejected[0].reason


def test_frames_over_the_byte_and_comment_bounds_are_rejected_alone(tmp_path, tiny_structures, monkeypatch):
    small, big = _frame(tiny_structures[1], material_id="small"), _frame(tiny_structures[3], material_id="big")
    wordy = _frame(tiny_structures[1], material_id="small", note="x" * 40)
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_FILE_BYTES", str(len(small) + 50))
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_HEADER_BYTES", str(len(small.splitlines()[1]) + 20))
    path = tmp_path / "bounds.xyz"
    path.write_text(small + big + wordy + small.replace("small", "again"))
    report = import_streaming(path, name="bounds", workers=1)
    assert report.dataset.ids == ["small", "again"]
    reasons = {r.row: r.reason for r in report.rejected}
    assert "(max_file_bytes)" in reasons["frame 1"] and "(max_header_bytes)" in reasons["frame 2"]


def test_more_frames_than_allowed_is_refused_before_anything_is_written(tmp_path, tiny_structures, monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ROWS", "3")
    path = tmp_path / "many.xyz"
    path.write_text("".join(_frame(tiny_structures[1], material_id=f"m{k}") for k in range(4)))
    with pytest.raises(DatasetError, match=r"many.xyz: holds more frames than allowed.*max_rows"):
        import_streaming(path, name="many", workers=1)


def test_too_many_distinct_keys_is_refused(tmp_path, tiny_structures, monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_COLUMNS", "3")
    path = tmp_path / "keys.xyz"
    path.write_text("".join(_frame(tiny_structures[1], **{f"k{k}": 1.0}) for k in range(5)))
    with pytest.raises(DatasetError, match="distinct property keys.*max_columns"):
        extxyz_stream(path, source="s")


def test_no_usable_frame_is_one_sentence(tmp_path):
    path = tmp_path / "none.xyz"
    path.write_text("".join(BROKEN))
    with pytest.raises(DatasetError, match=r"none.xyz: no structure could be imported \(first reason: frame 0: line 1 sh"):
        import_streaming(path, name="none", workers=1)
    path.write_text(list(BROKEN)[0] + list(BROKEN)[1])
    with pytest.raises(DatasetError, match=r"none.xyz: holds no usable frame \(frame 0: line 1 should") as info:
        extxyz_stream(path, source="s")
    _one_sentence(str(info.value))


def test_a_gzipped_file_streams_like_the_plain_one(tmp_path, tiny_structures):
    text = "".join(_frame(s, material_id=f"z{k}") for k, s in enumerate(tiny_structures))
    plain, packed = tmp_path / "f.xyz", tmp_path / "f.xyz.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    a = import_streaming(plain, name="plain", workers=1).dataset
    b = import_streaming(packed, name="packed", workers=1).dataset
    assert a.fingerprint == b.fingerprint and a.ids == b.ids


def test_scan_frames_and_first_frame(tiny_structures):
    text = _frame(tiny_structures[0]) + "\n\n" + _frame(tiny_structures[1])
    items = list(scan_frames(text.splitlines(keepends=True), "t.xyz", max_atoms=10))
    assert [type(i) for i in items] == [Frame, Frame] and [i.index for i in items] == [0, 1]
    assert first_frame(text, "t.xyz", max_atoms=10) == items[0].text
    with pytest.raises(DatasetError, match="t.xyz: frame 0: it declares 2 atoms, above the limit of 1"):
        first_frame(text, "t.xyz", max_atoms=1)
    assert isinstance(next(iter(scan_frames(["x\n"], "t", max_atoms=1))), Rejected)


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        stream = extxyz_stream(path, source="s")
        for _ in stream.rows:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_frames(tmp_path, tiny_structures):
    frame = _frame(tiny_structures[3], energy=-1.0)
    peaks = []
    for n in (500, 5_000):
        path = tmp_path / f"f{n}.xyz"
        path.write_text(frame * n)
        peaks.append(_peak_bytes(path))
    assert peaks[1] < 1.5 * peaks[0] + 200_000, peaks  # ten times the frames, about the same memory


@pytest.mark.shared
def test_zoo_cifs_as_frames_with_broken_ones_between(shared_data, tmp_path):
    from crystalrep.structures import StructureError, read_structure

    zoo = sorted((shared_data / "cif_zoo" / "pymatgen-core").glob("*.cif"))[:12]
    parts, good = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, path in enumerate(zoo):
            try:
                structure = read_structure(path)
            except StructureError:
                continue
            parts.append(_frame(structure, material_id=path.stem))
            good.append(path.stem)
            parts.append(list(BROKEN)[k % len(BROKEN)])
    assert len(good) >= 5
    path = tmp_path / "zoo.extxyz"
    path.write_text("".join(parts))
    report = import_streaming(path, name="zoo", workers=2, chunk_rows=3)
    assert report.dataset.ids == good and len(report.rejected) == len(good)
    for r in report.rejected:
        _one_sentence(r.reason)
