"""crystalrep.limits: every bound named once, overridable by environment, enforced before the work."""

from __future__ import annotations

import dataclasses
import gzip
import threading
import time

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from crystalrep.limits import Limits, OutOfTime, clean_message, current_limits, time_budget
from crystalrep.structures import (
    StructureError,
    read_structure,
    read_structures,
    validate_structure,
)
from tests.fuzzing import peak_rss_mb, reset_peak_rss, rss_mb

NACL = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
NACL_CIF = str(CifWriter(NACL))


def _cif(cell: str = "10 10 10 90 90 90", ops: list[str] | None = None, sites: list[str] | None = None) -> str:
    keys = ("_cell_length_a", "_cell_length_b", "_cell_length_c", "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")
    lines = ["data_t", *(f"{k} {v}" for k, v in zip(keys, cell.split(), strict=True))]
    lines += ["loop_", "_symmetry_equiv_pos_as_xyz", *(f"'{op}'" for op in ops or ["x,y,z"])]
    lines += ["loop_", "_atom_site_type_symbol", "_atom_site_label", *(f"_atom_site_fract_{a}" for a in "xyz")]
    return "\n".join(lines + (sites or ["Si Si0 0 0 0"])) + "\n"


def _grid_sites(n: int, spacing: float = 1.0) -> list[str]:
    k = int(np.ceil(n ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n] * spacing
    return [f"Si Si{i} {x:.5f} {y:.5f} {z:.5f}" for i, (x, y, z) in enumerate(grid)]


def _refusal(source: str, **kwargs) -> str:
    with pytest.raises(StructureError) as info:
        read_structures(source, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{source}: ") and len(message) <= 300 and message.isprintable(), message
    return message


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """Records every time pymatgen's CifParser is created (the expensive part)."""
    from pymatgen.io.cif import CifParser

    calls: list[str] = []
    original = CifParser.from_str.__func__

    def recording(cls, *args, **kwargs):
        calls.append("CifParser")
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(CifParser, "from_str", classmethod(recording))
    return calls


def test_defaults_are_valid_and_frozen():
    lim = Limits()
    assert lim.max_atoms == 500 and lim.max_message_chars == 300
    with pytest.raises(dataclasses.FrozenInstanceError):
        lim.max_atoms = 10  # type: ignore[misc]
    assert lim.replace(max_atoms=2000).max_atoms == 2000
    for bad in ({"max_atoms": 0}, {"max_atoms": 1.5}, {"min_distance": float("nan")}, {"min_cell_length": 5000.0}):
        with pytest.raises(ValueError, match="limit"):
            lim.replace(**bad)


def test_environment_overrides_reach_the_reader(monkeypatch):
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_ATOMS", "2_000")
    monkeypatch.setenv("CRYSTALREP_LIMIT_MAX_CELL_LENGTH", "5")
    lim = current_limits()
    assert lim.max_atoms == 2000 and lim.max_cell_length == 5.0 and lim.max_sites == Limits().max_sites
    message = _refusal("nacl.cif", text=NACL_CIF)
    assert "5.64 Å exceeds the limit of 5 Å (CRYSTALREP_LIMIT_MAX_CELL_LENGTH)" in message
    monkeypatch.delenv("CRYSTALREP_LIMIT_MAX_CELL_LENGTH")
    assert len(read_structure("nacl.cif", text=NACL_CIF)) == 2


@pytest.mark.parametrize(("name", "value"), [("MAX_ATOMS", "abc"), ("MAX_ATOMS", "-5"), ("MAX_ATOMS", "1.5"),
                                             ("MIN_DISTANCE", "nan"), ("PARSE_SECONDS", "inf"), ("MAX_ATMS", "10")])
def test_a_malformed_override_is_one_sentence(monkeypatch, name, value):
    monkeypatch.setenv(f"CRYSTALREP_LIMIT_{name}", value)
    with pytest.raises(ValueError) as info:
        current_limits()
    message = str(info.value)
    assert f"CRYSTALREP_LIMIT_{name}" in message and "\n" not in message and len(message) <= 300
    assert name != "MAX_ATMS" or "did you mean CRYSTALREP_LIMIT_MAX_ATOMS?" in message
    with pytest.raises(ValueError, match=f"CRYSTALREP_LIMIT_{name}"):
        read_structures("nacl.cif", text=NACL_CIF)
    assert str(StructureError("still readable.")) == "still readable."


@pytest.mark.parametrize(("cell", "fragment"), [
    ("1e308 4 4 90 90 90", "cell edge a = 1e+308 Å exceeds the limit of 1000 Å"),
    ("-1e308 4 4 90 90 90", "cell lengths must be positive"),
    ("nan 4 4 90 90 90", "NaN or infinite"),
    ("1e6 4 4 90 90 90", "cell edge a = 1e+06 Å exceeds"),
    ("1e8 4 4 90 90 90", "cell edge a = 1e+08 Å exceeds"),
    ("4 1e300 1e300 90 90 90", "cell edge b = 1e+300 Å exceeds"),
    ("1e20 4 4 90 90 90", "cell edge a = 1e+20 Å exceeds"),
    ("4 4 4 120 120 120", "do not form a three-dimensional cell"),
    ("40 40 40 90 90 0.01", "thick between opposite faces"),
    ("40 40 40 90 90 90", "volume per atom, 6.4e+04 Å³, exceeds the limit of 5000 Å³"),
    ("0.9 0.9 0.9 90 90 90", "volume per atom, 0.729 Å³, is below the limit of 1 Å³"),
])
def test_hostile_cells_are_refused_before_pymatgen_builds(builds, cell, fragment):
    cpu = time.process_time()
    message = _refusal("cell.cif", text=_cif(cell))
    assert fragment in message
    assert time.process_time() - cpu < 1.0
    assert builds == (["CifParser"] if "volume per atom" in fragment else [])  # counting atoms needs its operations


def test_ten_thousand_symmetry_operations_fail_fast_and_small(builds):
    before, cpu = rss_mb(), time.process_time()
    reset_peak_rss()
    message = _refusal("ops.cif", text=_cif(ops=["x,y,z"] * 10_000, sites=_grid_sites(4, 0.2)))
    assert "10,000 symmetry operations exceed the limit of 192 (CRYSTALREP_LIMIT_MAX_SYMOPS)" in message
    assert time.process_time() - cpu < 1.0 and peak_rss_mb() - before < 100 and builds == []


def test_ten_thousand_sites_fail_fast(builds):
    cpu = time.process_time()
    message = _refusal("sites.cif", text=_cif("60 60 60 90 90 90", sites=_grid_sites(10_000, 0.04)))
    assert "10000 atom sites exceed the limit of 500 per cell (CRYSTALREP_LIMIT_MAX_SITES)" in message
    assert time.process_time() - cpu < 1.0 and builds == []


def test_symmetry_work_is_capped_before_expanding(builds):
    translations = [f"x+{k},y,z" for k in range(192)]  # 192 operations that all map a site onto itself
    message = _refusal("work.cif", text=_cif(ops=translations, sites=_grid_sites(27, 0.3)))
    assert "27 listed sites times 192 symmetry operations exceed the limit of 5,000" in message
    assert builds == ["CifParser"]  # built to read the operations, never asked to expand them
    assert len(read_structure("work.cif", text=_cif(ops=translations, sites=_grid_sites(26, 0.3)))) == 26


def test_coordinates_blank_lines_and_long_lines():
    assert "fractional coordinate of 1e+06 exceeds the limit of 100" in _refusal(
        "far.cif", text=_cif(sites=["Si Si0 1e6 0 0"]))
    flooded = NACL_CIF.replace("_cell_length_a", "\n" * 300_000 + "_cell_length_a")  # quadratic in pymatgen
    cpu = time.process_time()
    assert len(read_structure("blank.cif", text=flooded)) == 2
    assert time.process_time() - cpu < 1.0
    assert "exceeds the limit of 2,048 (CRYSTALREP_LIMIT_MAX_CIF_LINE_CHARS)" in _refusal(
        "long.cif", text=NACL_CIF + "#" + "'\"" * 2000 + "\n")


def test_tables_beside_the_structure_are_not_rewritten_but_bounded():
    refl = ["loop_", "_refln_index_h", "_refln_index_k", "_refln_index_l", "_refln_F_squared_meas"]
    text = NACL_CIF + "\n".join(refl + [f"{k % 7} {k % 5} {k % 3} {k * 0.01:.2f}" for k in range(40_000)]) + "\n"
    cpu = time.process_time()
    assert len(read_structure("hkl.cif", text=text)) == 2  # pymatgen's writer is quadratic in a loop's rows
    assert time.process_time() - cpu < 1.5
    aniso = ["loop_", "_atom_site_aniso_label", "_atom_site_aniso_U_11", *(f"Na{k} 0.01" for k in range(2_000))]
    assert "a loop of 2,000 rows exceeds the limit of 500 sites" in _refusal("aniso.cif", text=NACL_CIF + "\n".join(aniso))


def test_neighbour_count_matches_pymatgen_and_is_capped():
    tri = Structure(Lattice.from_parameters(3.1, 3.7, 4.3, 81, 97, 104), ["Si", "O", "O", "Mg"],
                    [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5], [0.5, 0.5, 0.25]])
    centres = tri.get_neighbor_list(r=6.0)[0]
    most = int(np.bincount(centres).max())
    assert validate_structure(tri, limits=Limits(max_neighbours_per_site=most)) is tri
    with pytest.raises(StructureError, match=f"has {most} neighbours within 6 Å, above the limit of {most - 1}"):
        validate_structure(tri, source="tri", limits=Limits(max_neighbours_per_site=most - 1))


def test_an_atom_too_close_to_its_own_image():
    thin = Structure(Lattice.orthorhombic(0.6, 3, 3), ["H"], [[0, 0, 0]])
    with pytest.raises(StructureError, match="atom 0 is only 0.600 Å from its own periodic image"):
        validate_structure(thin, source="thin", min_distance=0.7)


def test_declared_counts_and_json_depth_are_checked_before_parsing():
    poscar = "x\n1.0\n4 0 0\n0 4 0\n0 0 4\nSi\n1000000000\nDirect\n0 0 0\n"
    assert "1000000000 atoms exceed the limit of 500" in _refusal("POSCAR", text=poscar)
    xyz = '1000000000\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3\nSi 0 0 0\n'
    assert "declares 1000000000 atoms" in _refusal("big.xyz", text=xyz)
    assert "nests deeper than the limit of 64" in _refusal("deep.json", text="[" * 100 + "]" * 100)
    assert "nests deeper than the limit of 64" in _refusal("deeper.json", text="[" * 100_000)


def test_file_sizes_are_checked_before_reading_and_inflating(tmp_path):
    big = tmp_path / "big.cif"
    big.write_text(NACL_CIF + "#" * 2000)
    assert "above the limit of 1,000 (CRYSTALREP_LIMIT_MAX_FILE_BYTES)" in _refusal(
        str(big), limits=Limits(max_file_bytes=1000))
    bomb = tmp_path / "bomb.cif.gz"
    bomb.write_bytes(gzip.compress(NACL_CIF.encode() + b" " * 5_000_000))
    assert bomb.stat().st_size < 20_000
    assert "inflates to more than 1,000,000 bytes" in _refusal(str(bomb), limits=Limits(max_file_bytes=1_000_000))
    assert "is not a regular file" in _refusal(str(tmp_path))


def test_time_budget_stops_python_work_in_any_thread():
    def spin() -> None:
        with time_budget(0.05):
            while True:
                pass

    with pytest.raises(OutOfTime):
        spin()
    caught: list[BaseException] = []

    def worker() -> None:
        try:
            spin()
        except OutOfTime as exc:
            caught.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert len(caught) == 1
    with time_budget(0.05):
        pass
    start = time.perf_counter()
    while time.perf_counter() - start < 0.2:  # a budget that was left in time never fires later
        pass


def test_a_slow_parse_is_refused_by_the_budget():
    text = _cif("30 30 30 90 90 90", sites=_grid_sites(400, 0.09))
    message = _refusal("slow.cif", text=text, limits=Limits(parse_seconds=0.01))
    assert "reading took longer than the limit of 0.01 s (CRYSTALREP_LIMIT_PARSE_SECONDS)" in message


def test_messages_are_one_printable_line():
    assert clean_message("a\nb\x00c\td", 300) == "a b c d"
    long = clean_message("word " * 200, 300)
    assert len(long) == 300 and long.endswith("…")
    message = str(StructureError("x.cif: " + "line\n" * 400))
    assert len(message) <= 300 and "\n" not in message
    assert message.startswith("x.cif: line line") and message.endswith("…")
