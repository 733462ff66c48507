"""Crystal search and display tables (crystalrep.plots.structures.tables)."""

from __future__ import annotations

import pandas as pd
from pymatgen.core import Structure

from crystalrep.datasets import Dataset, PropertyInfo
from crystalrep.plots.structures import (
    crystal_labels,
    crystal_properties,
    neighbour_display,
    search_rows,
    spacegroup_label,
)


def test_labels_and_display_table() -> None:
    assert spacegroup_label(225) == "Fm-3m (225)"
    assert spacegroup_label(999) == "999"
    table = pd.DataFrame({"rank": [1], "id": ["x"], "formula": ["NaCl"], "spacegroup": [221], "distance": [0.0],
                          "density": [2.1], "row": [7]})
    assert crystal_labels(table) == ["x — NaCl — Pm-3m (221)"]
    shown = neighbour_display(table)
    assert list(shown.columns) == ["rank", "id", "formula", "space group", "distance", "density"]
    assert shown.loc[0, "space group"] == "Pm-3m (221)"


def test_search_by_element_formula_and_id(tiny_structures: list[Structure]) -> None:
    ds = Dataset.from_structures("s", ["nacl-1", "fe-bcc", "zno-w", "sto-perov", "mgsio"], tiny_structures)
    assert list(search_rows(ds, "O")) == [2, 3, 4]  # an element: crystals containing oxygen
    assert list(search_rows(ds, "o ti")) == [3]  # every word must match, any case
    assert list(search_rows(ds, "Ti1Sr1O3")) == [3]  # a formula, reduced
    assert list(search_rows(ds, "perov")) == [3] and list(search_rows(ds, "NaCl")) == [0]
    assert len(search_rows(ds, "")) == 0 and len(search_rows(ds, "Xx9")) == 0


def test_crystal_properties_table(tiny_structures: list[Structure]) -> None:
    ds = Dataset.from_structures("s", [f"t{i}" for i in range(5)], tiny_structures,
                                 properties={"gap": [1.0, float("nan"), 3.0, 4.0, 5.0]},
                                 property_info={"gap": PropertyInfo("gap", unit="eV")})
    table = crystal_properties(ds, 1).set_index("property")["value"]
    assert table["id"] == "t1" and table["formula"] == "Fe" and table["gap (eV)"] == "no value"
