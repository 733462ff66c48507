"""3-D views of crystals, crystal search, and the display tables of one crystal and its neighbours.

:mod:`~crystalrep.plots.structures.view` draws a cell (atoms, periodic images, edges, supercells);
:mod:`~crystalrep.plots.structures.bonds` finds bonds and draws them and coordination polyhedra;
:mod:`~crystalrep.plots.structures.tables` searches a dataset and builds the display tables.
"""

from crystalrep.plots.structures.bonds import (
    ANION_EN,
    BOND_TOLERANCE,
    FALLBACK_COLOUR,
    MAX_BOND,
    POLYHEDRON_SIZES,
    SHELL,
    bonds,
)
from crystalrep.plots.structures.tables import (
    LABELS,
    crystal_labels,
    crystal_properties,
    neighbour_display,
    search_rows,
    spacegroup_label,
)
from crystalrep.plots.structures.view import (
    BOUNDARY_TOL,
    CELL_COLOUR,
    MAX_SITES,
    SUPERCELLS,
    cell_edges,
    structure_figure,
    supercells,
)

__all__ = ["ANION_EN", "BOND_TOLERANCE", "BOUNDARY_TOL", "CELL_COLOUR", "FALLBACK_COLOUR", "LABELS", "MAX_BOND",
           "MAX_SITES", "POLYHEDRON_SIZES", "SHELL", "SUPERCELLS", "bonds", "cell_edges", "crystal_labels",
           "crystal_properties", "neighbour_display", "search_rows", "spacegroup_label", "structure_figure",
           "supercells"]
