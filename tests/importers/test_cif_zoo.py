"""Every file of ../shared/data/cif_zoo either parses or fails with one StructureError sentence."""

from __future__ import annotations

import pytest

from crystalrep.importers.api import import_path
from crystalrep.structures import StructureError, read_structures
from tests.conftest import shared_data_dir

ROOT = shared_data_dir()
ZOO = sorted(p for p in (ROOT / "cif_zoo").rglob("*") if p.name.lower().endswith((".cif", ".mcif", ".cif.gz"))) if ROOT else []
# Files that must be refused, each for a reason a user can act on.
BROKEN = {
    "diffpy.structure/nosites.cif": "no structure",
    "pymatgen-core/P24Ru4H252C296S24N16.cif": "616 atoms exceed the limit of 500",
    "pymatgen-core/Li10GeP2S12.cif": "partial occupancy",
    "pymatgen-core/srycoo.cif": "partial occupancy",
    "pymatgen-core/magnetic.incommensurate.example.Cr.mcif": "Incommensurate",
    "pymatgen-core/bad_superflat_inf_loop.cif.gz": "no structure",
}

pytestmark = pytest.mark.shared


def _outcome(path) -> str | None:
    """None if the file parses, else the StructureError message (anything else fails the test)."""
    try:
        structures = read_structures(path)
    except StructureError as exc:
        return str(exc)
    assert structures and all(len(s) > 0 for s in structures)
    return None


@pytest.mark.parametrize("path", ZOO or [None],  # one case that the shared_data fixture skips
                         ids=lambda p: p.relative_to(ROOT / "cif_zoo").as_posix() if p else "no-shared-data")
def test_every_zoo_file_parses_or_says_why(path, shared_data, recwarn, capsys):
    message = _outcome(path)
    if message is not None:
        assert message.startswith(f"{path}: ") and "\n" not in message and len(message) > len(str(path)) + 10
    assert [str(w.message) for w in recwarn] == []
    assert capsys.readouterr() == ("", "")


def test_zoo_folder_import_reports_every_broken_file(shared_data, capsys):
    zoo = shared_data / "cif_zoo"
    expected = {p.relative_to(zoo).as_posix(): _outcome(p) for p in ZOO}
    report = import_path(zoo, name="zoo")
    rejected = {r.row: r.reason for r in report.rejected}
    assert set(rejected) == {name for name, msg in expected.items() if msg is not None}
    assert len(report.dataset) + len(rejected) == len(expected) == 57
    for name, fragment in BROKEN.items():
        assert fragment in rejected[name], (name, rejected[name])
    for name, reason in rejected.items():
        assert reason == expected[name].split(": ", 1)[1]  # the same sentence, without the path
    assert capsys.readouterr() == ("", "")
