"""Parse and validate one crystal structure from CIF, POSCAR, pymatgen JSON or extxyz.

Every failure is a :class:`StructureError`: one printable sentence naming the source and the
reason. Every bound comes from :mod:`crystalrep.limits` and is checked before the work it
bounds. The modules, in the order a file meets them:

- :mod:`~crystalrep.structures.formats`: the one table of input formats (name and content -> reader);
- :mod:`~crystalrep.structures.read`: bounded bytes, the per-file time budget, the public readers;
- :mod:`~crystalrep.structures.parse`: text -> pymatgen structures, each format's size checks first;
- :mod:`~crystalrep.structures.cif` and :mod:`~crystalrep.structures.symmetry`: CIF block
  pre-checks (cell, loops, sites, symmetry expansion) before pymatgen builds anything;
- :mod:`~crystalrep.structures.checks`: validation of a parsed crystal (cell, elements, distances);
- :mod:`~crystalrep.structures.errors`: :class:`StructureError` and the capture of parser warnings.
"""

from crystalrep.structures.checks import MAX_ATOMS, MIN_DISTANCE, validate_structure
from crystalrep.structures.errors import StructureError
from crystalrep.structures.formats import FORMATS, detect_format
from crystalrep.structures.read import read_structure, read_structures, text_from_bytes

__all__ = ["FORMATS", "MAX_ATOMS", "MIN_DISTANCE", "StructureError", "detect_format", "read_structure",
           "read_structures", "text_from_bytes", "validate_structure"]
