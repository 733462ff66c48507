"""crystalrep.structures: every format parses, every failure is one StructureError sentence."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.limits import Limits
from crystalrep.structures import (
    StructureError,
    detect_format,
    read_structure,
    read_structures,
    text_from_bytes,
    validate_structure,
)

NACL = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
FE = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _error(source, **kwargs) -> str:
    with pytest.raises(StructureError) as info:
        read_structures(source, **kwargs)
    return str(info.value)


def _one_sentence(message: str, source: str) -> None:
    assert message.startswith(f"{source}: ")
    assert "\n" not in message and message.endswith(".")


@pytest.fixture(autouse=True)
def _nothing_leaks(recwarn, capsys):
    """No warning and no output may escape the parser, whatever the test does."""
    yield
    assert [str(w.message) for w in recwarn] == []
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_cif_roundtrip(tmp_path):
    path = tmp_path / "nacl.cif"
    path.write_text(NACL.to(fmt="cif"))
    s = read_structure(path)
    assert s.composition.reduced_formula == "NaCl" and len(s) == 2
    assert np.allclose(s.lattice.abc, (4.2, 4.2, 4.2))


def test_cif_multiblock_gives_every_block():
    text = NACL.to(fmt="cif") + "\n" + FE.to(fmt="cif")
    structures = read_structures("two.cif", text=text)
    assert [s.composition.reduced_formula for s in structures] == ["NaCl", "Fe"]
    assert read_structure("two.cif", text=text).composition.reduced_formula == "NaCl"


def test_gzipped_cif(tmp_path):
    path = tmp_path / "nacl.cif.gz"
    path.write_bytes(gzip.compress(NACL.to(fmt="cif").encode()))
    assert len(read_structure(path)) == 2


def test_poscar_and_json():
    assert read_structure("POSCAR", text=NACL.to(fmt="poscar")) == NACL
    assert read_structure("nacl.json", text=json.dumps(NACL.as_dict())) == NACL
    both = read_structures("two.json", text=json.dumps([NACL.as_dict(), FE.as_dict()]))
    assert [len(s) for s in both] == [2, 2]


def test_detect_format():
    assert detect_format("x.cif") == "cif" and detect_format("x.mcif.gz") == "cif"
    assert detect_format("CONTCAR") == "poscar" and detect_format("a.json") == "json"
    assert detect_format("frames.extxyz") == "extxyz"
    assert detect_format("noext", "data_x\n_cell_length_a 1") == "cif"


def test_nan_lattice_is_rejected():
    d = NACL.as_dict()
    d["lattice"]["matrix"][0][0] = float("nan")
    message = _error("nan.json", text=json.dumps(d))
    _one_sentence(message, "nan.json")
    assert "NaN" in message


def test_zero_volume_is_rejected():
    d = NACL.as_dict()
    d["lattice"]["matrix"] = [[4.2, 0, 0], [4.2, 0, 0], [0, 0, 4.2]]
    message = _error("flat.json", text=json.dumps(d))
    _one_sentence(message, "flat.json")
    assert "volume is zero" in message


def _supercell_poscar(reps: int) -> str:
    """POSCAR text of a reps³ supercell of a 6-atom cell, written directly (pymatgen is slow here)."""
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.25, 0.25, 0.75]])
    shifts = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    coords = ((frac[None] + shifts) / reps).reshape(-1, 3)
    order = np.argsort(np.tile(np.arange(6), len(shifts)), kind="stable")
    counts = [len(shifts)] * 6
    lines = ["supercell", "1.0", f"{4.0 * reps} 0 0", f"0 {5.0 * reps} 0", f"0 0 {6.0 * reps}",
             "Ba Ti O N F Sr", " ".join(map(str, counts)), "Direct"]
    lines += [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in coords[order]]
    return "\n".join(lines) + "\n"


def test_too_many_atoms_is_rejected():
    text = _supercell_poscar(12)
    message = _error("big/POSCAR", text=text, max_atoms=500)
    _one_sentence(message, "big/POSCAR")
    assert "10368 atoms exceed the limit of 500" in message


def _p1_cif(n: int) -> str:
    """A P1 CIF with ``n`` silicon sites on a grid, written directly (no pymatgen)."""
    k = int(np.ceil(n ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n] / k
    head = ["data_big", *(f"_cell_length_{a} 60" for a in "abc"), *(f"_cell_angle_{a} 90" for a in ("alpha", "beta", "gamma")),
            "_symmetry_space_group_name_H-M 'P 1'", "loop_", " _atom_site_type_symbol", " _atom_site_label",
            " _atom_site_fract_x", " _atom_site_fract_y", " _atom_site_fract_z"]
    return "\n".join(head + [f"  Si Si{i} {x:.4f} {y:.4f} {z:.4f}" for i, (x, y, z) in enumerate(grid)]) + "\n"


@pytest.fixture
def pymatgen_builds(monkeypatch) -> list[str]:
    """Records every call into pymatgen's CifParser (the slow part for big cells)."""
    from pymatgen.io.cif import CifParser

    calls: list[str] = []
    build = CifParser.parse_structures

    def recording(self, *args, **kwargs):
        calls.append("parse_structures")
        return build(self, *args, **kwargs)

    monkeypatch.setattr(CifParser, "parse_structures", recording)
    return calls


def test_oversized_cif_is_refused_before_parsing(pymatgen_builds, monkeypatch):
    from pymatgen.io.cif import CifParser

    monkeypatch.setattr(CifParser, "from_str", classmethod(lambda cls, *a, **k: pymatgen_builds.append("from_str")))
    message = _error("big.cif", text=_p1_cif(10_000), max_atoms=500)  # took ~35 s when pymatgen built it
    _one_sentence(message, "big.cif")
    assert "10000 atom sites exceed the limit of 500 per cell" in message
    assert pymatgen_builds == []


def test_symmetry_expansion_is_counted_before_building(pymatgen_builds):
    from pymatgen.io.cif import CifWriter

    from crystalrep.datasets import quiet_spglib

    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with quiet_spglib():
        text = str(CifWriter(rocksalt, symprec=0.1))  # 2 listed sites, 192 operations, 8 atoms
    message = _error("rocksalt.cif", text=text, max_atoms=6)
    _one_sentence(message, "rocksalt.cif")
    assert "8 atoms exceed the limit of 6 per cell (2 listed sites expanded by symmetry; CRYSTALREP_LIMIT_MAX_ATOMS)" in message
    assert pymatgen_builds == []
    assert len(read_structure("rocksalt.cif", text=text, max_atoms=8)) == 8
    assert pymatgen_builds == ["parse_structures"]


def test_partial_occupancy_names_the_site():
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}, "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    message = _error("alloy.cif", text=disordered.to(fmt="cif"))
    _one_sentence(message, "alloy.cif")
    assert "partial occupancy" in message and "(Fe0.5 Co0.5)" in message  # the site is named


def test_atoms_too_close():
    close = Structure(Lattice.cubic(5.0), ["Si", "Si"], [[0, 0, 0], [0.06, 0, 0]])
    message = _error("close.cif", text=close.to(fmt="cif"))
    _one_sentence(message, "close.cif")
    assert "0.300 Å apart" in message
    with pytest.raises(StructureError, match="apart"):
        validate_structure(close, source="close", min_distance=0.5)
    assert validate_structure(close, source="close", min_distance=0.2) is close


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_text(text):
    _one_sentence(_error("empty.cif", text=text), "empty.cif")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.cif"
    path.write_text("")
    message = _error(path)
    _one_sentence(message, str(path))
    assert "empty" in message


@pytest.mark.parametrize(("name", "text"), [
    ("garbage.txt", "hello world\nthis is not a crystal\n"),
    ("garbage.cif", "data_broken\n_cell_length_a banana\nloop_\n_atom_site_label\n"),
    ("garbage.json", "{not json"),
    ("garbage.json", json.dumps({"hello": "world"})),
    ("POSCAR", "title\n1.0\n1 0 0\n0 1 0\n"),
])
def test_garbage_is_one_clear_error(name, text):
    _one_sentence(_error(name, text=text), name)


def test_unknown_format_and_missing_file(tmp_path):
    _one_sentence(_error("x.cif", text="data_x", fmt="pdb"), "x.cif")
    missing = tmp_path / "missing.cif"
    _one_sentence(_error(missing), str(missing))


def test_cif_without_sites_says_so():
    message = _error("nosites.cif", text="data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n")
    _one_sentence(message, "nosites.cif")
    assert "no structure" in message


def test_read_structure_parses_only_the_first_block(pymatgen_builds):
    hostile = re.sub(r"_cell_length_a\s+\S+", "_cell_length_a 1e308", FE.to(fmt="cif"))
    text = NACL.to(fmt="cif") + "\n" + hostile
    assert "cell edge a = 1e+308 Å exceeds the limit of 1000 Å" in _error("two.cif", text=text)
    pymatgen_builds.clear()
    assert read_structure("two.cif", text=text).composition.reduced_formula == "NaCl"
    assert pymatgen_builds == ["parse_structures"]


def test_uploaded_bytes_are_inflated_within_the_limits():
    raw = gzip.compress(NACL.to(fmt="cif").encode() + b" " * 5000)
    assert len(raw) < 1000 and text_from_bytes("nacl.cif.gz", raw).startswith("# generated using pymatgen")
    with pytest.raises(StructureError, match="inflates to more than 1,000 bytes"):
        text_from_bytes("nacl.cif.gz", raw, limits=Limits(max_file_bytes=1000))
    with pytest.raises(StructureError, match="is not a valid gzip file"):
        text_from_bytes("nacl.cif.gz", raw[:40])
