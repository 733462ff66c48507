"""Hostile input through the importers and the CLI: every case ends in a project error or a report,
fast (< 2 s), without a memory blow-up (< 500 MB of peak RSS growth), and good rows beside a bad
one still import. Bombs are built by streaming, so building them does not raise the peak either.
"""

from __future__ import annotations

import gzip
import io
import json
import resource
import struct
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.checkpoint import CheckpointError
from crystalrep.datasets import DatasetError, dataset_dir, datasets_home, load_dataset
from crystalrep.importers.api import import_and_save, import_path, import_upload
from crystalrep.importers.rows import ImportReport
from crystalrep.structures import StructureError

PROJECT_ERRORS = (DatasetError, StructureError, CheckpointError)
MAX_SECONDS = 2.0
MAX_RSS_GROWTH_MB = 500
GOOD = [Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(Lattice.cubic(3.0), ["Fe"], [[0, 0, 0]])]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


@contextmanager
def bounded() -> Iterator[None]:
    """Fail unless the body takes under 2 s and raises the peak RSS by under 500 MB."""
    rss, start = _peak_mb(), time.perf_counter()
    yield
    seconds, growth = time.perf_counter() - start, _peak_mb() - rss
    assert seconds < MAX_SECONDS, f"took {seconds:.2f} s"
    assert growth < MAX_RSS_GROWTH_MB, f"peak RSS grew by {growth:.0f} MB"


def outcome(call: Callable[[], Any]) -> Any:
    """The result of ``call``, or the project error it raised (anything else fails the test)."""
    with bounded():
        try:
            return call()
        except PROJECT_ERRORS as exc:
            message = str(exc)
            assert "\n" not in message and len(message) <= 300, message
            assert "Traceback" not in message and "crystalrep-upload-" not in message, message
            return exc


def refused(call: Callable[[], Any], *needles: str) -> str:
    result = outcome(call)
    assert isinstance(result, DatasetError), f"expected a refusal, got {result!r}"
    for needle in needles:
        assert needle in str(result), str(result)
    return str(result)


def _cif(s: Structure) -> str:
    return s.to(fmt="cif")


def _csv(rows: list[tuple[str, ...]], header: str = "id,cif") -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header.split(","))
    writer.writerows(rows)
    return out.getvalue()


def _xyz(s: Structure, count: str | None = None) -> str:
    lat = " ".join(f"{x:.6f}" for x in s.lattice.matrix.reshape(-1))
    lines = [count or str(len(s)), f'Lattice="{lat}" Properties=species:S:1:pos:R:3 energy=-1.5 pbc="T T T"']
    lines += [f"{site.specie} {x:.6f} {y:.6f} {z:.6f}" for site in s for x, y, z in [site.coords]]
    return "\n".join(lines) + "\n"


def _gzip_zeros(path: Path, n_mb: int, head: bytes = b"") -> Path:
    chunk = b"0" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write(head)
        for _ in range(n_mb):
            fh.write(chunk)
    return path


def _zip(members: dict[str, bytes | int], *, encrypted: tuple[str, ...] = ()) -> bytes:
    """A zip; an int member is that many MB of zeros, written by streaming (a zip bomb)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            if isinstance(content, int):
                with archive.open(name, "w", force_zip64=True) as fh:
                    for _ in range(content):
                        fh.write(b"0" * (1 << 20))
            else:
                archive.writestr(name, content)
    data = bytearray(buf.getvalue())
    for name in encrypted:  # set the "encrypted" flag bit in the local and the central header
        raw = name.encode()
        for signature, flag_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
            local = data.find(signature)
            while local >= 0:
                (length,) = struct.unpack_from("<H", data, local + name_len_at)
                if bytes(data[local + name_at: local + name_at + length]) == raw:
                    data[local + flag_at] |= 0x1
                local = data.find(signature, local + 4)
    return bytes(data)


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory) -> None:
    """Import one good file first: the budgets are for the cases, not for loading pymatgen and ase."""
    folder = tmp_path_factory.mktemp("warm")
    (folder / "a.cif").write_text(_cif(GOOD[0]))
    (folder / "b.xyz").write_text(_xyz(GOOD[1]))
    (folder / "c.vasp").write_text(GOOD[1].to(fmt="poscar"))
    (folder / "d.json").write_text(json.dumps(GOOD[0].as_dict()))
    import_path(folder, name="warm")


# --- the importer cases of the issue --------------------------------------------------------------

def test_a_csv_header_of_4000_duplicate_names_is_fast(tmp_path, monkeypatch):
    path = tmp_path / "dup.csv"
    path.write_text("cif," + ",".join(["a"] * 4000) + "\n" + f'"{_cif(GOOD[0])}"' + ",1" * 4000 + "\n")
    refused(lambda: import_path(path, name="x"), "dup.csv", "4,001 columns", "max_columns")
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_COLUMNS", "10000")  # allowed: the header itself costs nothing
    report = outcome(lambda: import_path(path, name="x"))
    assert len(report.dataset) == 1 and "a.3999" in report.dataset.properties


def test_a_header_line_over_its_byte_limit_is_refused(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("cif," + "x" * 100_000 + "\n")
    refused(lambda: import_path(path, name="x"), "long.csv", "max_header_bytes")


def test_more_rows_than_allowed_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ROWS", "3")
    path = tmp_path / "rows.csv"
    path.write_text(_csv([(f"r{k}", _cif(GOOD[0])) for k in range(5)]))
    refused(lambda: import_path(path, name="x"), "rows.csv", "max_rows")


def test_an_extxyz_count_of_1e9_is_refused_at_once_and_earlier_frames_survive(tmp_path):
    lone = tmp_path / "lone.xyz"
    lone.write_text(_xyz(GOOD[0], count="1e9"))
    refused(lambda: import_path(lone, name="x"), "lone.xyz", "1,000,000,000 atoms", "max_atoms")
    mixed = tmp_path / "mixed.xyz"
    mixed.write_text(_xyz(GOOD[0]) + _xyz(GOOD[1]) + _xyz(GOOD[0], count="1000000000"))
    report = outcome(lambda: import_path(mixed, name="x"))
    assert len(report.dataset) == 2 and report.dataset.properties["energy"].kind == "numeric"
    assert [r.row for r in report.rejected] == ["frame 2"] and "max_atoms" in report.rejected[0].reason


@pytest.mark.parametrize("content", ['{"columns": 5, "data": 3}', '{"columns": ["structure"], "data": 3}',
                                     '{"columns": ["a", "b"], "data": [[1, 2]]}', "[1, 2]", '"text"', "{"])
def test_json_of_the_wrong_shape_is_one_sentence(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    refused(lambda: import_path(path, name="x"), "bad.json")


@pytest.mark.parametrize("depth", [65, 1_000, 200_000])
def test_deeply_nested_json_is_refused_by_its_depth(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_text('{"columns": ["structure"], "data": ' + "[" * depth + "]" * depth + "}")
    refused(lambda: import_path(path, name="x"), "deep.json", "max_json_depth")


def test_matbench_rows_of_the_wrong_shape_are_rejected_and_good_rows_import(tmp_path):
    good = [[GOOD[0].as_dict(), 1.5], [GOOD[1].as_dict(), 2.5]]
    data = {"index": [0, 1, 2, 3], "columns": ["structure", "e"], "data": [*good, 7, ["x", 1, 2]]}
    path = tmp_path / "mb.json"
    path.write_text(json.dumps(data))
    report = outcome(lambda: import_path(path, name="x"))
    assert len(report.dataset) == 2 and len(report.rejected) == 2


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory) -> Path:
    """~300 kB of gzip that inflates to 300 MB."""
    return _gzip_zeros(tmp_path_factory.mktemp("bomb") / "bomb.csv.gz", 300, head=b"cif\n")


@pytest.mark.parametrize("suffix", [".csv.gz", ".json.gz", ".xyz.gz", ".cif.gz"])
def test_a_gzip_bomb_is_refused_by_its_ratio_at_once(gzip_bomb, tmp_path, suffix):
    path = tmp_path / f"bomb{suffix}"
    path.symlink_to(gzip_bomb)
    assert gzip_bomb.stat().st_size < 1_000_000
    refused(lambda: import_path(path, name="x"), f"bomb{suffix}", "compressed more than 200:1")


@pytest.fixture(scope="module")
def dense_gzip(tmp_path_factory) -> Path:
    """6 MB of random hex: compresses only ~2:1, so only the byte limit can stop it."""
    path = tmp_path_factory.mktemp("dense") / "dense.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"cif\n" + np.random.default_rng(0).bytes(3_000_000).hex().encode())
    return path


@pytest.mark.parametrize(("suffix", "limit"), [(".csv.gz", "max_decompressed_bytes"), (".json.gz", "max_decompressed_bytes"),
                                               (".xyz.gz", "max_stream_bytes"), (".cif.gz", "max_file_bytes")])
def test_inflating_past_the_byte_limit_stops_at_the_limit(dense_gzip, tmp_path, monkeypatch, suffix, limit):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_DECOMPRESSED_BYTES", "5000000")
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_STREAM_BYTES", "5000000")
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_FILE_BYTES", "5000000")
    path = tmp_path / f"dense{suffix}"
    path.symlink_to(dense_gzip)
    refused(lambda: import_path(path, name="x"), f"dense{suffix}", "unpacks to more bytes than allowed", limit)


def test_a_gzipped_structure_file_in_a_folder_is_one_rejected_row(gzip_bomb, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "good.cif").write_text(_cif(GOOD[0]))
    (folder / "bomb.cif.gz").symlink_to(gzip_bomb)
    (folder / "broken.cif.gz").write_bytes(b"\x1f\x8b not gzip")
    (folder / "metadata.csv").write_text("cif," + ",".join(["a"] * 2000) + "\n")  # over max_columns
    report = outcome(lambda: import_path(folder, name="x"))
    assert report.dataset.ids == ["good"]
    reasons = {r.row: r.reason for r in report.rejected}
    assert "200:1" in reasons["bomb.cif.gz"] and "gzip" in reasons["broken.cif.gz"]
    assert "max_columns" in reasons["metadata.csv"]


def test_a_zip_bomb_is_refused_before_unpacking():
    bomb = _zip({"a.cif": 300})
    refused(lambda: import_upload("bomb.zip", bomb, name="x"), "bomb.zip", "max_decompressed_bytes")


def test_zip_members_that_are_bombs_encrypted_or_escaping_are_rejected_beside_good_ones():
    data = _zip({"good.cif": _cif(GOOD[0]).encode(), "secret.cif": _cif(GOOD[1]).encode(), "dense.cif": 20,
                 "../up.cif": b"x"}, encrypted=("secret.cif",))
    report = outcome(lambda: import_upload("mixed.zip", data, name="x"))
    assert report.dataset.ids == ["good"]
    reasons = {r.row: r.reason for r in report.rejected}
    assert "encrypted" in reasons["secret.cif"] and "200:1" in reasons["dense.cif"]
    assert "path traversal" in reasons["../up.cif"]
    only = _zip({"secret.cif": _cif(GOOD[1]).encode()}, encrypted=("secret.cif",))
    refused(lambda: import_upload("only.zip", only, name="x"), "only.zip: holds no usable files", "encrypted")


@pytest.mark.parametrize("data", [_zip({}), _zip({"__MACOSX/._a.cif": b"x", ".hidden.cif": b"x"}), b"PK\x05\x06" + bytes(18)])
def test_an_empty_zip_is_one_sentence_without_temp_folders(data):
    message = refused(lambda: import_upload("e.zip", data, name="x"), "e.zip")
    assert "/tmp" not in message and "crystalrep-upload" not in message


def test_an_upload_over_the_byte_limit_is_refused(monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_DECOMPRESSED_BYTES", "1000")
    refused(lambda: import_upload("big.cif", b"x" * 2000, name="x"), "big.cif", "max_decompressed_bytes")


def test_a_utf8_bom_csv_imports(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv([("a", _cif(GOOD[0])), ("b", _cif(GOOD[1]))]).encode())
    report = outcome(lambda: import_path(path, name="x"))
    assert report.dataset.ids == ["a", "b"]


def test_columns_named_like_internal_ones_are_renamed_and_the_dataset_stays_readable(tmp_path):
    path = tmp_path / "clash.csv"
    rows = [(f"r{k}", _cif(s), "1", "2", "3", "x", "4") for k, s in enumerate(GOOD)]
    path.write_text(_csv(rows, header="id,cif,lattice,numbers,frac,formula,source_lattice"))
    outcome(lambda: import_and_save(path, name="clash"))
    ds = load_dataset("clash")
    assert {"source_lattice", "source_numbers", "source_frac", "source_formula", "source_lattice.1"} <= set(ds.properties)
    assert ds.table["source_lattice"].tolist() == [1.0, 1.0] and ds.ids == ["r0", "r1"]


def test_a_failing_file_never_aborts_a_folder(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for k, s in enumerate(GOOD):
        (folder / f"good{k}.cif").write_text(_cif(s))
    (folder / "garbage.cif").write_bytes(bytes(range(256)) * 10)
    (folder / "huge.cif").write_text(_cif(GOOD[0]).replace("_cell_length_a", "_cell_length_a 1e20\n#"))
    (folder / "empty.vasp").write_text("")
    (folder / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    (folder / "count.xyz").write_text(_xyz(GOOD[0], count="1e9"))
    # a mangled column name once gave a "structure" whose atomic numbers were no elements
    (folder / "species.xyz").write_text(_xyz(GOOD[0]).replace("species:S", "specie99999999999999999999s:S"))
    report = outcome(lambda: import_path(folder, name="x"))
    assert sorted(report.dataset.ids) == ["good0", "good1"]
    assert {r.row for r in report.rejected} == {"garbage.cif", "huge.cif", "empty.vasp", "deep.json", "count.xyz",
                                                "species.xyz"}
    assert all("\n" not in r.reason and len(r.reason) <= 300 for r in report.rejected)


# --- mutated files (seeded): only project errors, fast, bounded ------------------------------------

def _mutate(raw: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(raw)
    kind = int(rng.integers(8))
    pos = int(rng.integers(max(len(data), 1)))
    if kind == 0:
        return bytes(data[:pos])  # truncation
    if kind == 1:
        for _ in range(int(rng.integers(1, 20))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        return bytes(data)
    if kind == 2:
        return bytes(data[:pos]) + rng.choice([b'"', b"\n", b",", b"[", b"{", b"\x00", b"\xff\xfe"]) * int(rng.integers(1, 200)) + bytes(data[pos:])
    if kind == 3:
        return bytes(data[:pos]) + rng.choice([b"1e308", b"-1e308", b"nan", b"1e9", b"-0", b"99999999999999999999"]) + bytes(data[pos:])
    if kind == 4:
        return bytes(data[:pos]) + bytes(data[pos:]).replace(b"\n", b"\r", 3)
    if kind == 5:
        return bytes(rng.integers(0, 256, size=int(rng.integers(1, 2000)), dtype=np.uint8))
    if kind == 6:
        return bytes(data) * int(rng.integers(2, 5))
    return bytes(data[:pos]) + bytes(data[pos:pos + 200]) * int(rng.integers(2, 50)) + bytes(data[pos + 200:])


def _seeds() -> dict[str, bytes]:
    csv_text = _csv([(f"r{k}", _cif(s)) for k, s in enumerate(GOOD)], header="id,cif")
    matbench = {"index": [0, 1], "columns": ["structure", "e"], "data": [[s.as_dict(), 1.0] for s in GOOD]}
    return {"t.csv": csv_text.encode(), "t.xyz": "".join(_xyz(s) for s in GOOD).encode(),
            "t.json": json.dumps(matbench).encode(), "t.cif": "".join(_cif(s) for s in GOOD).encode()}


@pytest.mark.parametrize("fmt", ["t.csv", "t.xyz", "t.json", "t.cif"])
def test_mutated_files_end_in_a_report_or_one_project_sentence(tmp_path, fmt):
    rng = np.random.default_rng(sum(map(ord, fmt)))
    seed = _seeds()[fmt]
    counts = {"imported": 0, "refused": 0}
    for case in range(60):
        path = tmp_path / f"{case}-{fmt}"
        path.write_bytes(_mutate(seed, rng))
        result = outcome(lambda path=path: import_path(path, name="fuzz", workers=1))
        counts["imported" if isinstance(result, ImportReport) else "refused"] += 1
        if isinstance(result, ImportReport):
            assert all("\n" not in r.reason and len(r.reason) <= 300 for r in result.rejected)
    assert counts["imported"] > 0 and counts["refused"] > 0, counts


# --- hostile names through the CLI --------------------------------------------------------------

@pytest.fixture
def cli(capsys) -> Callable[[list[str]], tuple[int, str]]:
    from crystalrep.cli.main import main

    def run(argv: list[str]) -> tuple[int, str]:
        with bounded():
            code = main(argv)
        return code, capsys.readouterr().err

    return run


@pytest.fixture
def small_csv(tmp_path) -> Path:
    path = tmp_path / "s.csv"
    path.write_text(_csv([(f"r{k}", _cif(s)) for k, s in enumerate(GOOD)]))
    return path


@pytest.mark.parametrize("name", ["abc\n", "default\n", "DEFAULT", "Default", "../escape", "a/b", "x" * 65, "\x00"])
def test_hostile_dataset_names_exit_2_with_one_line(cli, small_csv, name):
    code, err = cli(["data", "import", str(small_csv), "--name", name, "--quiet"])
    assert code == 2 and err.count("\n") == 1 and err.startswith("crystalrep: ") and len(err) <= 301
    assert not datasets_home().exists() or [p.name for p in datasets_home().iterdir() if not p.name.startswith(".")] == []


@pytest.mark.parametrize("encoder", ["soap\n", "cgcnn@/proc/self/mem", "cgcnn@/dev/zero", "cgcnn@../../etc",
                                     "cgcnn@" + "a" * 5000, "magpie,\nsoap"])
def test_hostile_encoder_names_exit_2_with_one_line(cli, small_csv, encoder):
    assert cli(["data", "import", str(small_csv), "--name", "s", "--quiet"])[0] == 0
    code, err = cli(["embed", "--dataset", "s", "--encoder", encoder, "--quiet"])
    assert code == 2 and err.count("\n") == 1 and len(err) <= 301, err


def test_a_pickled_checkpoint_is_refused_in_one_sentence(cli, small_csv, tmp_path):
    import torch

    import crystalrep.encoders.cgcnn  # noqa: F401 - torch_geometric loads outside the time budget

    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "kind": "cgcnn", "config": {}, "state_dict": {}, "meta": {"x": Path("/")}}, path)
    assert cli(["data", "import", str(small_csv), "--name", "s", "--quiet"])[0] == 0
    code, err = cli(["embed", "--dataset", "s", "--encoder", f"cgcnn@{path}", "--quiet"])
    assert code == 2 and err.count("\n") == 1 and "Python objects" in err and "weights_only" not in err


def test_an_import_killed_before_commit_leaves_a_name_that_is_still_free(cli, small_csv):
    (dataset_dir("s")).mkdir(parents=True)  # what a kill -9 between the table and meta.json leaves
    (dataset_dir("s") / "dataset-0123456789abcdef.parquet").write_bytes(b"half")
    assert cli(["data", "list", "--quiet"])[0] == 0
    assert cli(["data", "import", str(small_csv), "--name", "s", "--quiet"])[0] == 0
    assert len(load_dataset("s")) == 2
    assert sorted(p.suffix for p in dataset_dir("s").iterdir()) == [".json", ".parquet"]
