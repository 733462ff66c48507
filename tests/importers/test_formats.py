"""The importers use the one format table: ambiguous names and contents reach the right reader."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure

from crystalrep.datasets import DatasetError
from crystalrep.importers.api import detect_format, import_path, import_upload


def _zip(members: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _matbench(structures: list[Structure]) -> str:
    return json.dumps({"index": list(range(len(structures))), "columns": ["structure", "gap"],
                       "data": [[s.as_dict(), float(i)] for i, s in enumerate(structures)]})


def _extxyz(s: Structure, *, cell: bool = True) -> str:
    head = " ".join(f"{v:.6f}" for v in s.lattice.matrix.ravel())
    comment = f'Lattice="{head}" Properties=species:S:1:pos:R:3 pbc="T T T"' if cell else "a plain xyz frame"
    atoms = [f"{site.specie.symbol} {site.x:.6f} {site.y:.6f} {site.z:.6f}" for site in s]
    return "\n".join([str(len(s)), comment, *atoms]) + "\n"


def test_cif_gz_is_cif(tmp_path: Path, tiny_structures: list[Structure]) -> None:
    path = tmp_path / "nacl.cif.gz"
    path.write_bytes(gzip.compress(tiny_structures[0].to(fmt="cif").encode()))
    report = import_path(path, name="g")
    assert detect_format(path) == "cif" and report.format == "cif" and report.dataset.ids == ["nacl"]


def test_json_is_matbench_or_pymatgen_dicts_by_content(tmp_path: Path, tiny_structures: list[Structure]) -> None:
    matbench = tmp_path / "set.json"
    matbench.write_text(_matbench(tiny_structures[:3]))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([s.as_dict() for s in tiny_structures[:2]]))
    hidden = tmp_path / "download"  # no suffix: the content alone says matbench
    hidden.write_text(_matbench(tiny_structures[:2]))
    assert [detect_format(p) for p in (matbench, plain, hidden)] == ["matbench", "json", "matbench"]
    assert import_path(matbench, name="m").format == "matbench-json"
    assert import_path(plain, name="p").format == "json"
    assert len(import_path(hidden, name="h").dataset) == 2


def test_extxyz_and_xyz(tmp_path: Path, tiny_structures: list[Structure]) -> None:
    frames = tmp_path / "frames.xyz"
    frames.write_text("".join(_extxyz(s) for s in tiny_structures[:2]))
    unnamed = tmp_path / "frames.txt"
    unnamed.write_text(frames.read_text())
    assert detect_format(frames) == detect_format(unnamed) == "extxyz"
    assert len(import_path(unnamed, name="x").dataset) == 2
    plain = tmp_path / "molecule.xyz"  # a plain XYZ: read like extxyz, refused for having no cell
    plain.write_text(_extxyz(tiny_structures[0], cell=False) + _extxyz(tiny_structures[1]))
    report = import_path(plain, name="plain")
    assert len(report.dataset) == 1 and "no periodic cell" in report.rejected[0].reason


def test_csv_without_its_suffix(tmp_path: Path, tiny_structures: list[Structure]) -> None:
    path = tmp_path / "export.txt"
    path.write_text(pd.DataFrame({"id": ["a", "b"], "cif": [s.to(fmt="cif") for s in tiny_structures[:2]]})
                    .to_csv(index=False))
    assert detect_format(path) == "csv" and import_path(path, name="c").dataset.ids == ["a", "b"]


def test_a_zip_path_imports_like_a_zip_upload(tmp_path: Path, tiny_structures: list[Structure]) -> None:
    data = _zip({f"set/s{i}.cif": s.to(fmt="cif") for i, s in enumerate(tiny_structures[:3])})
    path = tmp_path / "set.zip"
    path.write_bytes(data)
    assert detect_format(path) == "zip"
    report = import_path(path, name="z")
    assert report.format == "folder" and sorted(report.dataset.ids) == ["s0", "s1", "s2"]
    assert report.dataset.meta["source"] == str(path.resolve())
    assert sorted(import_upload("no-suffix", data, name="u").dataset.ids) == ["s0", "s1", "s2"]  # sniffed


def test_a_zip_holding_only_a_zip_is_one_sentence(tmp_path: Path, tiny_structures: list[Structure]) -> None:
    inner = _zip({"a.cif": tiny_structures[0].to(fmt="cif")})
    with pytest.raises(DatasetError, match=r"^outer\.zip: holds only another zip archive; unpack it first\.$"):
        import_upload("outer.zip", _zip({"inner.zip": inner}), name="nested")
