"""How a crystal becomes a graph: the cutoff and neighbour-limit configuration."""

from __future__ import annotations

from dataclasses import dataclass

# pymatgen counts a neighbour at distance r + tol as inside r; we match it so the two agree.
TOL = 1e-8


@dataclass(frozen=True)
class GraphConfig:
    """How a crystal becomes a graph.

    Attributes:
        cutoff: Neighbour radius in Å (inclusive); may exceed the cell size.
        max_neighbors: If set, keep only this many nearest neighbours per centre (edges are
            then ordered by centre, distance, neighbour index, shift).
    """

    cutoff: float = 6.0
    max_neighbors: int | None = None

    def __post_init__(self) -> None:
        if not self.cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff!r}.")
        if self.max_neighbors is not None and self.max_neighbors < 1:
            raise ValueError(f"max_neighbors must be None or >= 1, got {self.max_neighbors!r}.")


DEFAULT = GraphConfig()
"""The configuration the graph builders use unless given one (6 Å, every neighbour)."""
