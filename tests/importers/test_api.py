"""crystalrep.importers.api: every format on tiny synthetic files, uploads, atomic saving."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import DatasetError, dataset_dir, datasets_home, load_dataset
from crystalrep.importers import api as importers
from crystalrep.importers.api import import_and_save, import_path, import_upload, save_imported
from crystalrep.importers.parse import parse_all

DISORDERED = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])


def _cif(s: Structure) -> str:
    return s.to(fmt="cif")


@pytest.fixture()
def csv_path(tmp_path, tiny_structures):
    n = len(tiny_structures)
    df = pd.DataFrame({
        "material_id": [f"m-{i}" for i in range(n)] + ["m-bad", "m-empty", "m-0"],
        "cif": [_cif(s) for s in tiny_structures] + [_cif(DISORDERED), "", _cif(tiny_structures[1])],
        "formula": ["x"] * (n + 3),
        "energy": [str(0.5 * i) for i in range(n + 3)],
        "label": list("abcab")[:n] + ["a", "b", "c"],
        "elements": ["['Na', 'Cl']"] * (n + 3),
        "prompt": ["a long generated description of this crystal structure"] * (n + 3),
        "icsd": [""] * (n + 3),
    })
    path = tmp_path / "set.csv"
    df.to_csv(path)  # keeps the unnamed index column, as CDVAE files do
    return path


def test_csv_import(csv_path, tiny_structures):
    seen: list[tuple[int, int]] = []
    report = import_path(csv_path, name="set", progress=lambda d, t: seen.append((d, t)))
    ds = report.dataset
    assert report.format == "csv" and len(ds) == len(tiny_structures)
    assert ds.ids == [f"m-{i}" for i in range(len(tiny_structures))]
    assert ds.properties["energy"].kind == "numeric" and ds.properties["label"].kind == "categorical"
    assert "source_formula" in ds.properties and "formula" in ds.table  # clash renamed, ours kept
    assert ds.meta["dropped_columns"] == {"elements": "list-like values", "prompt": "free text", "icsd": "empty"}
    assert {r.row: r.reason for r in report.rejected} == {
        "row 6 (id m-empty)": "the cif cell is empty.",
        "row 7 (id m-0)": "duplicate id 'm-0'; the first row with it was kept.",
        "row 5 (id m-bad)": "site 0 (Fe0.5 Co0.5) has partial occupancy; only ordered crystals are supported.",
    }
    assert ds.meta["imported_rows"] == 5 and ds.meta["rejected_rows"] == 3
    assert ds.meta["source"] == str(csv_path.resolve()) and ds.meta["format"] == "csv"
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert np.allclose(ds.table["energy"], [0, 0.5, 1.0, 1.5, 2.0])


def test_csv_without_id_column_uses_row_numbers(tmp_path, tiny_structures):
    path = tmp_path / "plain.csv"
    pd.DataFrame({"cif": [_cif(s) for s in tiny_structures[:2]]}).to_csv(path, index=False)
    assert import_path(path, name="plain").dataset.ids == ["0", "1"]
    gz = tmp_path / "plain.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert importers.detect_format(gz) == "csv" and len(import_path(gz, name="gz").dataset) == 2


def test_csv_errors_are_one_sentence(tmp_path):
    path = tmp_path / "nocif.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="has no 'cif' column"):
        import_path(path, name="x")
    bad = tmp_path / "allbad.csv"
    pd.DataFrame({"cif": [_cif(DISORDERED), "garbage"]}).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match=r"no structure could be imported \(first reason: row 0: site 0"):
        import_path(bad, name="x")
    with pytest.raises(DatasetError, match="does not exist"):
        import_path(tmp_path / "missing.csv", name="x")
    with pytest.raises(DatasetError, match="invalid"):
        import_path(path, name="bad name!")


def test_malformed_csv_row_is_reported(tmp_path, tiny_structures):
    text = pd.DataFrame({"cif": [_cif(tiny_structures[1])], "e": [1.0]}).to_csv(index=False)
    path = tmp_path / "ragged.csv"
    path.write_text(text + "x,1,2,3\n")
    report = import_path(path, name="ragged")
    assert len(report.dataset) == 1
    assert report.rejected[0].row == "row 1" and "4 fields" in report.rejected[0].reason


def _folder(tmp_path, tiny_structures, *, metadata: str):
    root = tmp_path / "folder"
    (root / "sub").mkdir(parents=True)
    for i, s in enumerate(tiny_structures[:3]):
        (root / f"set_id-{i}.cif").write_text(_cif(s))
    (root / "sub" / "POSCAR_extra").write_text(tiny_structures[3].to(fmt="poscar"))
    (root / "broken.cif").write_text(_cif(DISORDERED))
    (root / "README.md").write_text("not a structure")
    rows = [("id-0", "set_id-0.cif", 1.5, "cubic-ish"), ("id-1", "set_id-1.cif", 2.5, "x"),
            ("id-2", "set_id-2.cif", None, "y"), ("id-9", "absent.cif", 9.0, "z")]
    df = pd.DataFrame(rows, columns=["material_id", "cif_filename", "gap", "kind"])
    if metadata == "id":
        df = df.drop(columns="cif_filename")
    df.to_csv(root / "metadata.csv", index=False)
    return root


@pytest.mark.parametrize("metadata", ["file", "id"])
def test_folder_with_metadata(tmp_path, tiny_structures, metadata):
    report = import_path(_folder(tmp_path, tiny_structures, metadata=metadata), name="folder")
    ds = report.dataset
    assert report.format == "folder"
    assert sorted(ds.ids) == ["id-0", "id-1", "id-2", "sub/POSCAR_extra"]
    assert [r.row for r in report.rejected] == ["broken.cif"]
    assert "partial occupancy" in report.rejected[0].reason
    gap = dict(zip(ds.ids, ds.table["gap"], strict=True))
    assert gap["id-1"] == 2.5 and np.isnan(gap["id-2"]) and np.isnan(gap["sub/POSCAR_extra"])
    assert ds.properties["kind"].kind == "categorical"
    assert ds.meta["files_with_metadata"] == 3 and ds.meta["files"] == 5


def test_folder_without_structures(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing")
    with pytest.raises(DatasetError, match="holds no CIF"):
        import_path(tmp_path / "empty", name="x")


def test_extxyz_frames_and_info(tmp_path, tiny_structures):
    from ase import Atoms
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for i, s in enumerate(tiny_structures[:3]):
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.info.update(energy_per_atom=-1.0 * i, phase=f"p{i % 2}", material_id=f"x-{i}")
        frames.append(atoms)
    frames.append(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]))  # a molecule: no cell
    path = tmp_path / "frames.extxyz"
    write(path, frames, format="extxyz")
    report = import_path(path, name="xyz")
    ds = report.dataset
    assert report.format == "extxyz" and ds.ids == ["x-0", "x-1", "x-2"]
    assert list(ds.table["energy_per_atom"]) == [0.0, -1.0, -2.0]
    assert ds.properties["phase"].kind == "categorical"
    assert report.rejected[0].row == "frame 3" and "no periodic cell" in report.rejected[0].reason


def _matbench(structures, rows=None) -> dict:
    data = rows if rows is not None else [[s.as_dict(), 10.0 * i] for i, s in enumerate(structures)]
    return {"index": list(range(len(data))), "columns": ["structure", "target"], "data": data}


def test_matbench_json(tmp_path, tiny_structures):
    rows = [[s.as_dict(), 10.0 * i] for i, s in enumerate(tiny_structures)]
    rows += [[{"lattice": "nonsense"}, 1.0], ["too", "many", "fields"]]
    path = tmp_path / "matbench_tiny.json.gz"
    path.write_bytes(gzip.compress(json.dumps(_matbench(None, rows)).encode()))
    report = import_path(path, name="mb")
    ds = report.dataset
    assert report.format == "matbench-json" and len(ds) == len(tiny_structures)
    assert ds.ids[0] == "matbench_tiny-0" and ds.properties["target"].kind == "numeric"
    assert sorted(r.row for r in report.rejected) == ["row 5 (id matbench_tiny-5)", "row 6 (id matbench_tiny-6)"]


def test_json_structure_list_and_single_files(tmp_path, tiny_structures):
    path = tmp_path / "many.json"
    path.write_text(json.dumps([s.as_dict() for s in tiny_structures[:2]]))
    assert import_path(path, name="j").dataset.ids == ["many-0", "many-1"]
    cif = tmp_path / "blocks.cif"
    cif.write_text(_cif(tiny_structures[0]) + _cif(DISORDERED) + _cif(tiny_structures[1]))
    report = import_path(cif, name="c")
    assert report.format == "cif" and report.dataset.ids == ["blocks-0", "blocks-2"]
    assert report.rejected[0].row == "blocks.cif block 1"
    poscar = tmp_path / "POSCAR"
    poscar.write_text(tiny_structures[2].to(fmt="poscar"))
    assert import_path(poscar, name="p").dataset.ids == ["POSCAR"]
    text = tmp_path / "Si.txt"
    text.write_text(_cif(tiny_structures[1]))
    assert importers.detect_format(text) == "cif" and import_path(text, name="t").dataset.ids == ["Si.txt"]


def test_parallel_parse_matches_serial(tiny_structures):
    items = [(f"row {k}", "cif", _cif(tiny_structures[k % 5] if k % 7 else DISORDERED)) for k in range(140)]
    serial = parse_all(items, workers=1)
    parallel = parse_all(items, workers=2)
    assert [isinstance(r, str) for r in serial] == [isinstance(r, str) for r in parallel]
    for a, b in zip(serial, parallel, strict=True):
        if isinstance(a, str):
            assert a == b
        else:
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _p1_cif(n: int) -> str:
    grid = np.stack(np.meshgrid(*[np.arange(10)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n] / 10
    head = ["data_big", "_cell_length_a 30", "_cell_length_b 30", "_cell_length_c 30", "_cell_angle_alpha 90",
            "_cell_angle_beta 90", "_cell_angle_gamma 90", "_symmetry_space_group_name_H-M 'P 1'", "loop_",
            " _atom_site_type_symbol", " _atom_site_label", " _atom_site_fract_x", " _atom_site_fract_y",
            " _atom_site_fract_z"]
    return "\n".join(head + [f"  Si Si{i} {x:.2f} {y:.2f} {z:.2f}" for i, (x, y, z) in enumerate(grid)]) + "\n"


def test_oversized_cif_is_refused_before_building(tiny_structures):
    items = [("row 0", "cif", _p1_cif(600)), ("row 1", "cif", _p1_cif(60)), ("row 2", "cif", "data_x\n" + "\n" * 900)]
    big, small, empty = parse_all(items, max_atoms=500)
    assert big.startswith("600 atom sites exceed the limit of 500 per cell")  # refused before pymatgen builds it
    assert not isinstance(small, str) and len(small[1]) == 60
    assert isinstance(empty, str) and "no structure" in empty


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_upload_cif_and_zip(tiny_structures):
    data = (_cif(tiny_structures[0]) + _cif(tiny_structures[1])).encode()
    report = import_upload("../../two.cif", data, name="up")
    assert report.dataset.ids == ["two-0", "two-1"] and report.dataset.meta["source"] == "upload:../../two.cif"
    members = {f"set/s{i}.cif": _cif(s) for i, s in enumerate(tiny_structures[:3])}
    members["set/metadata.csv"] = "id,e\ns0,1.0\ns1,2.0\n"
    members["../evil.cif"] = _cif(tiny_structures[3])
    members["__MACOSX/set/._s0.cif"] = "junk"
    report = import_upload("set.zip", _zip(members), name="zipped")
    assert report.format == "folder" and sorted(report.dataset.ids) == ["s0", "s1", "s2"]
    assert [r.row for r in report.rejected] == ["../evil.cif"] and "traversal" in report.rejected[0].reason
    assert report.dataset.meta["rejected_rows"] == 1


def test_upload_zip_of_one_csv(tiny_structures):
    csv = pd.DataFrame({"cif": [_cif(s) for s in tiny_structures]}).to_csv(index=False)
    report = import_upload("table.zip", _zip({"table.csv": csv}), name="z")
    assert report.format == "csv" and len(report.dataset) == len(tiny_structures)


def test_upload_limits(monkeypatch, tiny_structures):
    with pytest.raises(DatasetError, match="not a valid zip"):
        import_upload("x.zip", b"not a zip", name="x")
    monkeypatch.setattr("crystalrep.importers.archive.MAX_ZIP_MEMBERS", 2)
    with pytest.raises(DatasetError, match="holds 3 files; the limit is 2"):
        import_upload("x.zip", _zip({"a.cif": "a", "b.cif": "b", "c.cif": "c"}), name="x")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.cif", _cif(tiny_structures[0]) + "#\n" * 5000)  # small zipped, 10 kB unpacked
    padded = buf.getvalue()
    assert len(padded) < 3000
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_DECOMPRESSED_BYTES", "3000")
    with pytest.raises(DatasetError, match="^x.zip: unpacks to more bytes than allowed; the limit is 3,000 "
                                           r"\(max_decompressed_bytes; set CRYSTALREP_LIMIT_MAX_DECOMPRESSED_BYTES"):
        import_upload("x.zip", padded, name="x")
    with pytest.raises(DatasetError, match="no structure could be imported"):
        import_upload("x.cif", b"garbage", name="x")


def test_import_and_save_is_atomic(csv_path, tiny_structures, monkeypatch):
    report = import_and_save(csv_path, name="set", license="CC0")
    first = load_dataset("set")
    assert first.fingerprint == report.dataset.fingerprint and first.meta["license"] == "CC0"
    with pytest.raises(DatasetError, match="already exists"):
        import_and_save(csv_path, name="set")
    bad = csv_path.with_name("bad.csv")
    pd.DataFrame({"cif": ["garbage"]}).to_csv(bad, index=False)
    with pytest.raises(DatasetError):
        import_and_save(bad, name="set", overwrite=True)

    def broken_commit(path, obj):
        raise OSError("disk full")

    from crystalrep import datasets

    small = import_path(csv_path.with_name("set.csv"), name="set").dataset.subset([0, 1])
    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(datasets.registry, "atomic_write_json", broken_commit)  # the new table is written, meta.json not
        save_imported(small, overwrite=True)
    assert load_dataset("set").fingerprint == first.fingerprint  # untouched by both failures
    assert [p.name for p in datasets_home().iterdir() if not p.name.startswith(".")] == ["set"]
    save_imported(small, overwrite=True)
    assert len(load_dataset("set")) == 2 and dataset_dir("set").is_dir()
    with pytest.raises(DatasetError, match="reserved"):
        import_and_save(csv_path, name="default")


# --- real data (../shared/data); skipped where absent -------------------------------------------

def _head_csv(src, n: int, dest):
    pd.read_csv(src, dtype=str, keep_default_na=False).head(n).to_csv(dest, index=False)
    return dest


@pytest.mark.shared
def test_perov5_subset(shared_data, tmp_path):
    path = _head_csv(shared_data / "perov_5" / "val.csv", 100, tmp_path / "val.csv")
    report = import_path(path, name="perov5")
    ds = report.dataset
    assert len(ds) == 100 and report.rejected == []
    for col in ("heat_all", "heat_ref", "dir_gap", "ind_gap"):
        assert ds.properties[col].kind == "numeric" and ds.table[col].notna().all()
    assert ds.ids[0] == "18517" and set(ds.table["nsites"]) == {5}


@pytest.mark.shared
def test_mp20_and_mp40_subsets(shared_data, tmp_path):
    mp20 = _head_csv(shared_data / "mp_20_mini_slices" / "raw_mp20_dataset_mini.csv", 80, tmp_path / "mp20.csv")
    ds = import_path(mp20, name="mp20").dataset
    assert len(ds) == 80 and ds.ids[0] == "mp-1221227"
    assert {"formation_energy_per_atom", "band_gap", "e_above_hull", "spacegroup.number"} <= set(ds.property_names("numeric"))
    assert ds.meta["dropped_columns"] == {"elements": "list-like values"}
    mp40 = _head_csv(shared_data / "mp_40_test_chemeleon" / "test.csv", 20, tmp_path / "mp40.csv")
    ds = import_path(mp40, name="mp40").dataset
    assert len(ds) == 20 and ds.meta["dropped_columns"] == {"prompt": "free text"}
    assert ds.properties["source_crystal_system"].kind == "categorical"


@pytest.mark.shared
def test_carbon24_subset(shared_data, tmp_path):
    path = _head_csv(shared_data / "carbon_24" / "val.csv", 60, tmp_path / "c24.csv")
    ds = import_path(path, name="c24").dataset
    assert len(ds) == 60 and set(ds.table["chemsys"]) == {"C"}
    assert ds.properties["energy_per_atom"].kind == "numeric" and ds.table["nsites"].between(6, 24).all()


def _copy_subset(src, dest, names):
    import shutil

    dest.mkdir()
    for name in names:
        shutil.copy(src / name, dest / name)
    return dest


@pytest.mark.shared
def test_jarvis_folder_subset(shared_data, tmp_path):
    src = shared_data / "jarvis_dft_sample_lemat"
    meta = pd.read_csv(src / "metadata.csv")
    root = _copy_subset(src, tmp_path / "jarvis", ["metadata.csv", *meta["cif_filename"][:50]])
    report = import_path(root, name="jarvis")
    ds = report.dataset
    assert len(ds) + len(report.rejected) == 50 and ds.meta["files_with_metadata"] == 50
    assert set(ds.ids) <= set(meta["jid"][:50]) and ds.meta["id_column"] == "jid"
    assert {"formation_energy_per_atom", "bandgap_optb88vdw"} <= set(ds.property_names("numeric"))
    assert ds.properties["dimensionality"].kind == "categorical" and ds.meta["dropped_columns"] == {"icsd": "empty"}


@pytest.mark.shared
@pytest.mark.slow
def test_jarvis_folder_full(shared_data):
    report = import_path(shared_data / "jarvis_dft_sample_lemat", name="jarvis")
    assert len(report.dataset) + len(report.rejected) == 2500 and len(report.dataset) >= 2400
    assert report.dataset.meta["files_with_metadata"] == 2500


@pytest.mark.shared
def test_mp_sample_joins_by_id_in_file_stem(shared_data, tmp_path):
    src = shared_data / "mp_sample_lemat"
    names = sorted(p.name for p in src.glob("mp_*.cif"))[:30]
    ds = import_path(_copy_subset(src, tmp_path / "mp", ["metadata.csv", *names]), name="mp").dataset
    assert ds.meta["files_with_metadata"] == 30 and all(i.startswith("mp-") for i in ds.ids)
    assert ds.properties["density"].kind == "numeric" and "source_spacegroup" in ds.properties


@pytest.mark.shared
def test_matbench_phonons_subset(shared_data, tmp_path):
    data = json.loads(gzip.decompress((shared_data / "matbench_phonons" / "matbench_phonons.json.gz").read_bytes()))
    data = {"index": data["index"][:80], "columns": data["columns"], "data": data["data"][:80]}
    path = tmp_path / "matbench_phonons.json.gz"
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    report = import_path(path, name="phonons")
    ds = report.dataset
    assert len(ds) == 80 and report.rejected == [] and ds.ids[:2] == ["matbench_phonons-0", "matbench_phonons-1"]
    assert ds.properties["last phdos peak"].kind == "numeric" and ds.table["last phdos peak"].between(50, 4000).all()


def test_the_max_atoms_override_reaches_an_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``CRYSTALREP_LIMIT_MAX_ATOMS`` applies to imports, not only to single-file reads."""
    from pymatgen.io.cif import CifWriter

    folder = tmp_path / "cifs"
    folder.mkdir()
    small = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    CifWriter(small).write_file(folder / "small.cif")
    CifWriter(small * (2, 2, 2)).write_file(folder / "big.cif")  # 16 atoms
    assert len(import_path(folder, name="both").dataset) == 2
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ATOMS", "8")
    report = import_path(folder, name="capped")
    assert len(report.dataset) == 1 and len(report.rejected) == 1
    assert "8" in report.rejected[0].reason
