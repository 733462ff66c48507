"""crystalrep.importers.stream: chunked, parallel, sharded import equals the whole-file import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, DatasetError, dataset_dir, load_dataset, save_dataset
from crystalrep.importers import chunks as chunks_module
from crystalrep.importers.api import import_path
from crystalrep.importers.stream import chunk_rows_for, import_streaming

ROOT = Path(__file__).resolve().parents[2]
DISORDERED = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])


def _rows(structures: list[Structure], copies: int) -> pd.DataFrame:
    n = len(structures) * copies
    return pd.DataFrame({
        "material_id": [f"m-{i}" for i in range(n)],
        "cif": [s.to(fmt="cif") for s in structures] * copies,
        "formula": ["x"] * n,
        "energy": [str(0.5 * i) for i in range(n)],
        "label": ["a", "b", "c"] * (n // 3) + ["a"] * (n % 3),
        "prompt": ["a long generated description of this crystal structure"] * n,
    })


@pytest.fixture()
def csv_path(tmp_path, tiny_structures):
    df = _rows(tiny_structures, 4)  # 20 good rows, then a bad, an empty and a repeated one
    bad = pd.DataFrame({"material_id": ["m-bad", "m-empty", "m-3"], "cif": [DISORDERED.to(fmt="cif"), "", df.cif[0]],
                        "formula": "x", "energy": "1", "label": "a", "prompt": "p"})
    path = tmp_path / "set.csv"
    pd.concat([df.iloc[:7], bad, df.iloc[7:]], ignore_index=True).to_csv(path)
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_streaming_equals_the_whole_file_import(csv_path, workers):
    whole = import_path(csv_path, name="whole", workers=1)
    seen: list[tuple[int, int]] = []
    report = import_streaming(csv_path, name="set", workers=workers, chunk_rows=4, progress=lambda d, t: seen.append((d, t)))
    ds = report.dataset
    assert len(ds.shard_bounds()) == 6 and len(list(dataset_dir("set").glob("shard-*.parquet"))) == 6
    assert ds.fingerprint == whole.dataset.fingerprint and ds.ids == whole.dataset.ids
    assert ds.properties == whole.dataset.properties and ds.meta["dropped_columns"] == whole.dataset.meta["dropped_columns"]
    assert list(ds.table.columns) == list(whole.dataset.table.columns)
    assert ds.table["energy"].tolist() == whole.dataset.table["energy"].tolist()
    assert ds.table["label"].tolist() == whole.dataset.table["label"].astype(object).tolist()
    assert {r.row: r.reason for r in report.rejected} == {r.row: r.reason for r in whole.rejected}
    assert len(report.rejected) == 3 and ds.meta["rejected_rows"] == 3 and ds.meta["imported_rows"] == 20
    assert seen[-1] == (23, 23) and ds.structure(19) == whole.dataset.structure(19)


def test_the_limits_reach_every_worker(csv_path, monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ATOMS", "3")  # SrTiO3 (5), ZnO (4), the Mg silicate (4) go
    report = import_streaming(csv_path, name="small", workers=2, chunk_rows=4)
    assert len(report.dataset) == 8 and set(report.dataset.table["nsites"]) == {1, 2}
    reasons = [r.reason for r in report.rejected]
    assert sum("CRYSTALREP_LIMIT_MAX_ATOMS" in r for r in reasons) == 12
    assert all("\n" not in r and len(r) <= 300 for r in reasons)
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ROWS", "10")
    with pytest.raises(DatasetError, match="max_rows"):
        import_streaming(csv_path, name="capped", workers=1)
    assert not (dataset_dir("capped") / "meta.json").exists()


def test_a_failed_import_leaves_the_old_dataset_whole(csv_path, tiny_structures, monkeypatch):
    old = import_streaming(csv_path, name="set", workers=1, chunk_rows=4).dataset
    files = sorted(p.name for p in dataset_dir("set").iterdir())
    calls = {"n": 0}
    real = chunks_module.process_chunk

    def dies_on_the_third(chunk):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(chunk)

    monkeypatch.setattr("crystalrep.importers.stream.process_chunk", dies_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        import_streaming(csv_path, name="set", workers=1, chunk_rows=3, overwrite=True)
    assert sorted(p.name for p in dataset_dir("set").iterdir()) == files
    assert load_dataset("set").fingerprint == old.fingerprint
    with pytest.raises(DatasetError, match="already exists"):
        import_streaming(csv_path, name="set")


def test_no_valid_row_is_one_sentence_and_saves_nothing(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"cif": ["garbage", "more garbage"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"no structure could be imported \(first reason: row 0: "):
        import_streaming(path, name="bad", workers=1)
    assert not dataset_dir("bad").exists()


def test_a_folder_streams_file_by_file_with_its_metadata(tmp_path, tiny_structures, monkeypatch):
    folder = tmp_path / "cifs"
    (folder / "sub").mkdir(parents=True)
    for i, s in enumerate(tiny_structures):
        (folder / ("sub" if i % 2 else "") / f"mp_m-{i}.cif").write_text(s.to(fmt="cif"))
    (folder / "mp_m-9.cif").write_text("x" * 5000)  # over the byte limit set below: one rejected file
    pd.DataFrame({"material_id": [f"m-{i}" for i in range(5)], "gap": [str(i) for i in range(5)]}).to_csv(
        folder / "metadata.csv", index=False)
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_FILE_BYTES", "4000")
    whole = import_path(folder, name="whole", workers=1)
    report = import_streaming(folder, name="folder", workers=2, chunk_rows=2)
    ds = report.dataset
    assert ds.fingerprint == whole.dataset.fingerprint and ds.ids == whole.dataset.ids and len(ds.shard_bounds()) == 3
    assert ds.properties == whole.dataset.properties and ds.table["gap"].tolist() == whole.dataset.table["gap"].tolist()
    assert {k: ds.meta[k] for k in ("files", "files_with_metadata", "id_column")} == {"files": 6, "files_with_metadata": 5,
                                                                                     "id_column": "material_id"}
    assert report.rejected == whole.rejected and [r.row for r in report.rejected] == ["mp_m-9.cif"]


def test_extxyz_frames_stream_with_their_info(tmp_path, tiny_structures):
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for i, s in enumerate(tiny_structures):
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.info.update(energy_per_atom=-1.0 * i, phase=f"p{i % 2}", material_id=f"x-{i}")
        frames.append(atoms)
    path = tmp_path / "frames.extxyz"
    write(path, frames, format="extxyz")
    whole = import_path(path, name="whole", workers=1).dataset
    ds = import_streaming(path, name="xyz", workers=2, chunk_rows=2).dataset
    assert ds.fingerprint == whole.fingerprint and ds.properties == whole.properties
    assert ds.table["energy_per_atom"].tolist() == whole.table["energy_per_atom"].tolist()
    assert ds.table["phase"].tolist() == whole.table["phase"].astype(object).tolist()


def test_a_zip_streams_its_members(tmp_path, tiny_structures):
    archive = tmp_path / "cifs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, s in enumerate(tiny_structures):
            zf.writestr(f"set/c{i}.cif", s.to(fmt="cif"))
        zf.writestr("../evil.cif", "x")
    whole = import_path(archive, name="whole", workers=1)
    report = import_streaming(archive, name="zipped", workers=1, chunk_rows=2)
    assert report.dataset.fingerprint == whole.dataset.fingerprint and len(report.dataset) == len(tiny_structures)
    assert [r.row for r in report.rejected] == ["../evil.cif"] == [r.row for r in whole.rejected]


def test_chunk_size_follows_the_row_count():
    assert [chunk_rows_for(n) for n in (10, 10_000, 50_000, 1_000_000)] == [250, 313, 1563, 5000]


def test_the_cli_imports_in_parallel(csv_path, capsys):
    assert main(["data", "import", str(csv_path), "--name", "cli", "--workers", "2", "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["rows"] == 20 and len(payload["rejected"]) == 3
    assert payload["fingerprint"] == load_dataset("cli").fingerprint
    with pytest.raises(SystemExit):
        main(["data", "import", str(csv_path), "--name", "cli2", "--workers", "0"])


@pytest.mark.slow
def test_a_killed_import_leaves_the_old_dataset(tmp_path, tiny_structures):
    save_dataset(Dataset.from_structures("big", ["a"], tiny_structures[:1]))
    before = load_dataset("big").fingerprint
    path = tmp_path / "big.csv"
    _rows(tiny_structures, 400).to_csv(path, index=False)  # 2,000 rows, 8 shards of 250
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "crystalrep", "data", "import", str(path), "--name", "big",
                             "--overwrite", "--workers", "1", "--quiet"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(list(dataset_dir("big").glob("shard-*.parquet"))) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the import wrote no shard in time"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert load_dataset("big").fingerprint == before  # the shards written so far are not part of it
