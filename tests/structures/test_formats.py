"""crystalrep.structures.formats: one table from a file name and its first characters to a reader."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.structures import StructureError, detect_format, read_structure
from crystalrep.structures.formats import (
    FORMATS,
    TABLE,
    detect,
    format_of_name,
    needs_content,
    sniff,
    strip_suffix,
    structure_format,
)

NACL = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
EXTXYZ = 'Lattice="4.2 0 0 0 4.2 0 0 0 4.2" Properties=species:S:1:pos:R:3 pbc="T T T"'
MATBENCH = json.dumps({"index": [0], "columns": ["structure", "e_form"], "data": [[NACL.as_dict(), 1.0]]})


@pytest.mark.parametrize(("name", "fmt"), [
    ("x.cif", "cif"), ("x.CIF.gz", "cif"), ("a/b/x.mcif.gz", "cif"), ("POSCAR", "poscar"), ("CONTCAR_relaxed", "poscar"),
    ("Si.vasp", "poscar"), ("s.json", "json"), ("s.json.gz", "json"), ("f.xyz", "extxyz"), ("f.extxyz.gz", "extxyz"),
    ("t.csv", "csv"), ("t.csv.gz", "csv"), ("up.zip", "zip"), ("Si.txt", None), ("noext", None),
])
def test_the_name_decides_first_looking_through_gz(name: str, fmt: str | None) -> None:
    assert format_of_name(name) == fmt


def test_every_format_is_named_once_and_structure_formats_are_the_readable_ones() -> None:
    suffixes = [s for f in TABLE for s in f.suffixes]
    assert len(suffixes) == len(set(suffixes)) and len({f.name for f in TABLE}) == len(TABLE)
    assert FORMATS == ("cif", "poscar", "json", "extxyz")
    assert structure_format("x.cif.gz") == "cif" and structure_format("t.csv") is None
    assert structure_format("a.zip") is None and structure_format("notes.txt") is None


@pytest.mark.parametrize(("head", "fmt"), [
    ("PK\x03\x04\x14\x00rest", "zip"), ("PK\x05\x06" + "\x00" * 18, "zip"),
    (json.dumps(NACL.as_dict()), "json"), ("[" + json.dumps(NACL.as_dict()) + "]", "json"), (MATBENCH, "matbench"),
    ("# comment\ndata_x\n_cell_length_a 4.2\n", "cif"), ("\ufeffdata_x\n", "cif"),
    (f"2\n{EXTXYZ}\nNa 0 0 0\nCl 2.1 2.1 2.1\n", "extxyz"), ("2\nplain xyz, no cell\nNa 0 0 0\nCl 1 1 1\n", "extxyz"),
    ("id,cif,energy\n1,data_x,0.5\n", "csv"), ('"material_id","cif"\n', "csv"),
    (NACL.to(fmt="poscar"), None), ("1\nNa Cl\n1.0\n4.2 0 0\n", None), ("garbage", None),
])
def test_the_content_sniff(head: str, fmt: str | None) -> None:
    assert sniff(head) == fmt


def test_json_is_the_one_suffix_refined_by_content() -> None:
    assert needs_content("x.json") and needs_content("Si.txt") and not needs_content("x.cif.gz")
    assert detect("mb.json", MATBENCH) == "matbench" and detect("mb.json.gz", MATBENCH) == "matbench"
    assert detect("s.json", json.dumps(NACL.as_dict())) == "json"
    assert detect("s.json") == "json"  # no content: the name alone
    assert detect("x.cif", MATBENCH) == "cif"  # any other name is not second-guessed
    assert detect("Si.txt", NACL.to(fmt="cif")) == "cif" and detect("Si.txt", "garbage") is None


def test_strip_suffix_removes_only_structure_suffixes() -> None:
    assert strip_suffix("a/mp-1.cif.gz") == "a/mp-1" and strip_suffix("s.EXTXYZ") == "s"
    assert strip_suffix("POSCAR.1") == "POSCAR.1" and strip_suffix("notes.txt") == "notes.txt"


def test_detect_format_of_structure_files_falls_back_to_poscar() -> None:
    assert detect_format("noext", NACL.to(fmt="poscar")) == "poscar"
    assert detect_format("frames", f"2\n{EXTXYZ}\nNa 0 0 0\nCl 2.1 2.1 2.1\n") == "extxyz"
    with pytest.raises(StructureError, match="cannot tell the file format"):
        detect_format("noext")


@pytest.mark.parametrize(("name", "text", "what"), [
    ("mb.json", MATBENCH, "a matbench table"), ("t.csv", "id,cif\n1,x\n", "a CSV table"),
    ("anything", "PK\x03\x04rest", "a zip archive"),
])
def test_a_table_or_archive_is_refused_as_a_structure_in_one_sentence(name: str, text: str, what: str) -> None:
    with pytest.raises(StructureError) as info:
        read_structure(name, text=text)
    message = str(info.value)
    assert message.startswith(f"{name}: is {what}") and "not a structure file" in message
    assert "crystalrep data import" in message
    assert "\n" not in message and message.endswith(".")
