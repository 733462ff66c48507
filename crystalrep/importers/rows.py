"""Shared machinery of the importers: raw rows, row streams, rejected rows, building the dataset.

Readers (tabular, files) turn a source into :class:`Rows` — one parse item per row plus its
id and properties, nothing parsed yet. :func:`build_report` parses every item, reports the
failures as :class:`Rejected` rows and builds the :class:`~crystalrep.datasets.Dataset`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from crystalrep.datasets import Dataset, DatasetError, PropertyInfo
from crystalrep.importers.bounded import clip, limits, refusal
from crystalrep.importers.parse import Parsed, Progress, parse_all

log = logging.getLogger(__name__)

MAX_META_REJECTED = 200


@dataclass(frozen=True)
class Rejected:
    """A row that was not imported.

    Args:
        row: Row label (``row 12 (id mp-1)``) or file name.
        reason: One sentence saying why.
    """

    row: str
    reason: str


@dataclass
class ImportReport:
    """What an import produced: the dataset, the rejected rows and the detected format."""

    dataset: Dataset
    rejected: list[Rejected]
    format: str


@dataclass
class Rows:
    """Unparsed rows: ``items[k]`` is ``(kind, payload)`` with kind cif|poscar|json|extxyz|arrays."""

    format: str
    source: str
    labels: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    items: list[tuple[str, Any]] = field(default_factory=list)
    properties: dict[str, list[Any]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, ident: str, item: tuple[str, Any], props: dict[str, Any]) -> None:
        """Append one row; properties missing from ``props`` become ``None``."""
        n = len(self.ids)
        for col in props.keys() - self.properties.keys():
            self.properties[col] = [None] * n
        for col, values in self.properties.items():
            values.append(props.get(col))
        self.labels.append(label)
        self.ids.append(ident)
        self.items.append(item)


RawRow = tuple[str, str, tuple[str, Any], dict[str, Any]]


@dataclass
class RowStream:
    """Rows to import, with what is known before reading them all."""

    format: str
    total: int
    rows: Iterator[RawRow]
    columns: list[str] = field(default_factory=list)  # property names, in order
    descriptions: dict[str, str] = field(default_factory=dict)  # property -> description from the source
    rejected: list[Rejected] = field(default_factory=list)  # grows while ``rows`` is consumed
    meta: dict[str, Any] = field(default_factory=dict)


def _plain_structures(parsed: list[Parsed]) -> list[Any]:
    from pymatgen.core import Lattice, Structure

    # Labels are computed on exactly what the dataset stores (no magmoms, no oxidation states).
    return [Structure(Lattice(lat), nums.tolist(), frac) for lat, nums, frac in parsed]


def _unique(rows: Rows) -> tuple[list[int], list[Rejected]]:
    seen: set[str] = set()
    keep, dropped = [], []
    for k, ident in enumerate(rows.ids):
        if ident in seen:
            dropped.append(Rejected(rows.labels[k], f"duplicate id {ident!r}; the first row with it was kept."))
        else:
            seen.add(ident)
            keep.append(k)
    return keep, dropped


def build_report(rows: Rows, *, name: str, max_atoms: int | None = None, workers: int | None = None,
                 progress: Progress | None = None, meta: dict[str, Any] | None = None,
                 property_info: dict[str, PropertyInfo] | None = None) -> ImportReport:
    """Parse ``rows`` and build the dataset; progress runs over 2 × rows (parse, then labels).

    Raises:
        DatasetError: If no row yields a valid structure.
    """
    start = time.perf_counter()
    if len(rows.ids) > limits().max_rows:
        raise refusal(rows.source, f"holds {len(rows.ids):,} rows", "max_rows")
    candidates, rejected = _unique(rows)
    rejected = list(rows.rejected) + rejected
    n = len(candidates)
    parsed = parse_all([(rows.labels[k], *rows.items[k]) for k in candidates], max_atoms=max_atoms,
                       workers=workers, progress=progress, total=2 * n)
    keep, good = [], []
    for k, result in zip(candidates, parsed, strict=True):
        if isinstance(result, str):
            rejected.append(Rejected(rows.labels[k], result))
        else:
            keep.append(k)
            good.append(result)
    rejected = [Rejected(clip(r.row, 100), clip(r.reason)) for r in rejected]  # one line each, whatever was echoed
    if not keep:
        first = f" (first reason: {rejected[0].row}: {rejected[0].reason.rstrip('.')})" if rejected else ""
        source = rows.source if len(rows.source) <= 80 else "…" + rows.source[-79:]
        raise DatasetError(clip(f"{source}: no structure could be imported{first}."))
    label_progress = None
    if progress is not None:
        def label_progress(done: int, _total: int) -> None:
            progress(n + round(done * n / len(keep)), 2 * n)
    hints = {c: v for c, v in (property_info or {}).items() if c in rows.properties}
    all_meta = {**rows.meta, **(meta or {}), "format": rows.format,
                "imported_rows": len(keep), "rejected_rows": len(rejected),
                "rejected": [{"row": r.row, "reason": r.reason} for r in rejected[:MAX_META_REJECTED]]}
    # from_structures logs pymatgen's warnings and keeps spglib quiet itself.
    dataset = Dataset.from_structures(
        name, [rows.ids[k] for k in keep], _plain_structures(good),
        properties={c: [v[k] for k in keep] for c, v in rows.properties.items()},
        property_info=hints, meta=all_meta, progress=label_progress)
    for col, desc in rows.descriptions.items():
        if col in dataset.properties and col not in hints:  # keep the inferred kind, add the text
            dataset.properties[col] = replace(dataset.properties[col], description=desc)
    log.info("imported %d rows (%d rejected) from %s in %.1f s", len(keep), len(rejected),
             rows.source, time.perf_counter() - start)
    return ImportReport(dataset=dataset, rejected=rejected, format=rows.format)
