"""The error for one refused cell of a batch, so callers can name the row it came from."""

from __future__ import annotations


class CellError(ValueError):
    """A cell of a batch the graph code refuses.

    Attributes:
        cell: Its position in the batch (callers add the batch's first row to name the row).
        reason: One sentence, without the position.
    """

    def __init__(self, cell: int, reason: str) -> None:
        super().__init__(f"cell {cell}: {reason}")
        self.cell, self.reason = int(cell), reason
