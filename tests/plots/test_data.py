"""Figure builders: the data inside each figure is the dataset's, and follows the chosen property."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.datasets import Dataset, DatasetError, PropertyInfo
from crystalrep.plots import data as plots


@pytest.fixture(scope="module")
def tiny(tiny_structures: list[Structure]) -> Dataset:
    n = len(tiny_structures)
    return Dataset.from_structures(
        "tiny", [f"t{i}" for i in range(n)], tiny_structures,
        properties={"volume": [s.volume for s in tiny_structures],
                    "density": [float(s.density) for s in tiny_structures],
                    "kind": ["a", "b", "a", "c", "a"][:n]},
        property_info={"volume": PropertyInfo("volume", unit="Å^3", description="cell volume")},
    )


def test_element_counts_counts_structures_not_atoms(tiny: Dataset) -> None:
    counts = plots.element_counts(tiny)
    assert counts["O"] == 3  # ZnO, SrTiO3 and the triclinic Mg-Si-O cell
    assert counts["Zn"] == 1  # two Zn atoms, one structure
    assert counts["Na"] == counts["Fe"] == 1
    assert counts.sum() == sum(len(set(s.atomic_numbers)) for s in tiny.structures())


def test_ptable_figure_holds_the_element_counts(tiny: Dataset) -> None:
    from pymatviz import df_ptable

    counts = plots.element_counts(tiny)
    heat = plots.element_counts_figure(tiny).data[-1]
    raw = np.asarray(heat.customdata, dtype=float)
    for symbol in ("O", "Zn", "Ti", "Mg", "Cl"):
        row, col = df_ptable.loc[symbol, ["row", "column"]]
        assert raw[row - 1, col - 1] == counts[symbol]
        assert np.asarray(heat.z, dtype=float)[row - 1, col - 1] == counts[symbol]
    assert np.nansum(raw) == counts.sum()
    assert np.isnan(raw[df_ptable.loc["U", "row"] - 1, df_ptable.loc["U", "column"] - 1])


def test_ptable_log_scale_colours_by_log_count(tiny: Dataset) -> None:
    heat = plots.element_counts_figure(tiny, log=True).data[-1]
    raw = np.asarray(heat.customdata, dtype=float)
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), np.log10(raw), equal_nan=True)
    assert "log" in heat.colorbar.title.text
    assert list(heat.colorbar.ticktext) == ["1", "2"]  # ticks labelled with counts, not log10 values


def test_numeric_histogram_x_is_the_property_column_with_unit(tiny: Dataset) -> None:
    fig = plots.property_histogram(tiny, "volume")
    np.testing.assert_array_equal(np.asarray(fig.data[0].x), tiny.table["volume"].to_numpy())
    assert fig.layout.xaxis.title.text == "volume (Å^3)"


def test_changing_the_property_changes_the_figure(tiny: Dataset) -> None:
    volume = plots.property_histogram(tiny, "volume")
    density = plots.property_histogram(tiny, "density")
    np.testing.assert_array_equal(np.asarray(density.data[0].x), tiny.table["density"].to_numpy())
    assert not np.array_equal(np.asarray(volume.data[0].x), np.asarray(density.data[0].x))
    assert density.layout.xaxis.title.text == "density"


def test_categorical_property_is_a_bar_of_top_categories(tiny: Dataset) -> None:
    fig = plots.property_histogram(tiny, "kind")
    assert fig.data[0].type == "bar"
    assert list(fig.data[0].x)[0] == "a" and set(fig.data[0].x) == {"a", "b", "c"}
    assert list(fig.data[0].y) == [3, 1, 1]


def test_unknown_property_names_the_valid_ones(tiny: Dataset) -> None:
    with pytest.raises(DatasetError, match="volume"):
        plots.property_histogram(tiny, "nope")


def test_property_summary_mentions_unit_and_spread(tiny: Dataset) -> None:
    text = plots.property_summary(tiny, "volume")
    assert "Å^3" in text and "cell volume" in text and "n = 5" in text
    assert "3 distinct" in plots.property_summary(tiny, "kind")


@pytest.mark.parametrize(("query", "expected"), [("", 5), ("o", 3), ("SrTiO3", 1), ("o-sr-ti", 1), ("t1", 1), ("zz", 0)])
def test_display_table_search(tiny: Dataset, query: str, expected: int) -> None:
    table = plots.display_table(tiny, query=query)
    assert len(table) == expected
    assert {"id", "formula", "chemsys", "spacegroup", "volume"} <= set(table.columns)


def test_display_table_search_is_literal(tiny: Dataset) -> None:
    assert len(plots.display_table(tiny, query=".*")) == 0


def test_property_summary_has_one_full_stop_after_a_description_that_ends_in_one(tiny: Dataset) -> None:
    from crystalrep.datasets import PropertyInfo

    ds = Dataset.from_structures("dots", tiny.ids, [tiny.structure(i) for i in range(len(tiny))],
                                 properties={"volume": list(tiny.table["volume"])},
                                 property_info={"volume": PropertyInfo("volume", unit="Å^3", description="cell (Z > 94).")})
    text = plots.property_summary(ds, "volume")
    assert ".." not in text and "(Z > 94). n = " in text
