"""A one-table dataset opened lazily: the table columns at once, each structure column on first use.

Checking a table against the fingerprint in its ``meta.json`` means decoding every structure and
hashing it row by row (seconds at 200k rows). The fingerprint is a function of the table's bytes,
which are verified against their sha256 on every read, so it is computed once per table and kept in
the store (``dataset_fingerprints``, keyed by that sha256): a later load that finds the recorded
value equal to ``meta.json``'s decodes no structure column until one is used (a sharded dataset,
keyed by its shards' sha256s, skips the same hashing when its arrays are first used). A table without a
recorded sha256 or a remembered fingerprint, one whose ``meta.json`` names another fingerprint, or
one whose row sizes disagree with its ``nsites`` column is read and checked whole, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.datasets.parquet import Arrays, decode_table
from crystalrep.datasets.schema import PARQUET, STORAGE_COLUMNS, DatasetError, PropertyInfo
from crystalrep.datasets.sharded import concat_arrays, take
from crystalrep.datasets.storage import properties_of, read_verified

log = logging.getLogger(__name__)

FINGERPRINT_KIND = "dataset_fingerprints"
_VERSION = 1
_COLUMN_OF = {"lattices": "lattice", "numbers": "numbers", "frac_coords": "frac"}


def _key(content: dict[str, Any]) -> str:
    from crystalrep.store import content_key

    return content_key({**content, "v": _VERSION})


def content_of(meta: dict[str, Any]) -> dict[str, Any] | None:
    """What identifies a folder's bytes: its table's sha256, or its shards' (``None`` when not recorded)."""
    if "shards" in meta:
        return {"shard_sha256": [s["sha256"] for s in meta["shards"]]}
    sha = meta.get("parquet_sha256")
    return {"parquet_sha256": sha} if isinstance(sha, str) else None


def recall_fingerprint(content: dict[str, Any]) -> str | None:
    """The fingerprint remembered for these bytes (:func:`content_of`; ``None``: not known)."""
    import json

    from crystalrep.store import RESULT, Store

    files = Store().load_files(FINGERPRINT_KIND, _key(content), required=(RESULT,))
    try:
        value = json.loads(files[RESULT]) if files is not None else None
    except (ValueError, RecursionError):
        return None
    return value.get("fingerprint") if isinstance(value, dict) and isinstance(value.get("fingerprint"), str) else None


def remember_fingerprint(content: dict[str, Any], fingerprint: str, offsets: np.ndarray, nsites: Any) -> None:
    """Record the fingerprint of these bytes (:func:`content_of`), if their row sizes are the ``nsites`` column.

    A store that cannot be written (read-only home, full disk) only costs the next load its speed.
    """
    from crystalrep.store import Store

    if not np.array_equal(np.diff(offsets), np.asarray(nsites, dtype=np.int64)):
        return
    try:
        value = {"fingerprint": fingerprint}
        Store().memo_json(FINGERPRINT_KIND, _key(content), lambda: value, accept=value.__eq__)
    except OSError as exc:
        log.info("dataset fingerprint not remembered (%s)", exc)


@dataclass(frozen=True, eq=False)
class TableColumns:
    """The verified bytes of one table, decoding one structure column at a time.

    Args:
        name: Dataset name (for messages).
        blob: The parquet bytes, already checked against their sha256.
        offsets: Row ``i``'s sites are ``offsets[i]:offsets[i + 1]`` (from ``nsites``).
        n_elements: Distinct elements, as ``meta.json`` records.
    """

    name: str
    blob: bytes
    offsets: np.ndarray
    n_elements: int

    def array(self, attr: str) -> np.ndarray:
        """``lattices`` (n, 3, 3), ``numbers`` (sites,) or ``frac_coords`` (sites, 3), decoded now.

        Raises:
            DatasetError: If the column does not hold the rows and sites the table says.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        n, sites = len(self.offsets) - 1, int(self.offsets[-1])
        try:
            column = pq.ParquetFile(pa.BufferReader(self.blob)).read(columns=[_COLUMN_OF[attr]]).column(0).combine_chunks()
            values = column.flatten().to_numpy()
            if attr == "lattices":
                out, ok = values.reshape(-1, 3, 3).astype(np.float64), len(values) == 9 * n
            elif attr == "numbers":
                starts = column.offsets.to_numpy().astype(np.int64)
                out, ok = values.astype(np.int64), np.array_equal(starts - starts[0], self.offsets)
            else:
                out, ok = values.reshape(-1, 3).astype(np.float64), len(values) == 3 * sites
        except (pa.ArrowException, OSError, TypeError, ValueError, IndexError) as exc:
            raise DatasetError(f"dataset {self.name!r} cannot be read (its {_COLUMN_OF[attr]} column is damaged).") from exc
        if not ok:
            raise DatasetError(f"dataset {self.name!r} is broken: its {_COLUMN_OF[attr]} column does not match its nsites.")
        return out

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lattice, atomic numbers and fractional coordinates of row ``i`` (decodes its row group)."""
        part = self.gather(np.array([i], dtype=np.int64))
        return part.lattices[0], part.numbers, part.frac_coords

    def gather(self, idx: np.ndarray) -> Arrays:
        """The rows ``idx`` (valid, non-negative) in that order, decoding only the row groups that hold them.

        Raises:
            DatasetError: If a row group does not hold the sites the table says.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        file = pq.ParquetFile(pa.BufferReader(self.blob))
        sizes = [file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)]
        starts = np.cumsum([0, *sizes]).astype(np.int64)
        which = np.searchsorted(starts, idx, side="right") - 1
        parts = []
        for g in np.unique(which):
            a, b = int(starts[g]), int(starts[g + 1])
            try:
                group = _arrays(file.read_row_group(int(g), columns=list(STORAGE_COLUMNS)))
            except (pa.ArrowException, OSError, TypeError, ValueError, IndexError) as exc:
                raise DatasetError(f"dataset {self.name!r} cannot be read (its row group {g} is damaged).") from exc
            if len(group.lattices) != b - a or not np.array_equal(group.offsets, self.offsets[a:b + 1] - self.offsets[a]):
                raise DatasetError(f"dataset {self.name!r} is broken: its row group {g} does not match its nsites.")
            parts.append(take(group, idx[which == g] - a))
        order = np.argsort(which, kind="stable")
        return take(concat_arrays(parts), np.argsort(order, kind="stable"))


def _arrays(tab: Any) -> Arrays:
    """The structure arrays of a pyarrow table holding the three structure columns."""
    lat, nums, frac = (tab.column(c).combine_chunks() for c in STORAGE_COLUMNS)
    starts = nums.offsets.to_numpy().astype(np.int64)
    return Arrays(lat.flatten().to_numpy().reshape(-1, 3, 3).astype(np.float64), nums.flatten().to_numpy().astype(np.int64),
                  frac.flatten().to_numpy().reshape(-1, 3).astype(np.float64), starts - starts[0])


def _plain_layout(blob: bytes) -> bool:
    """Whether the structure columns are the last three and no table column shares their names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(pa.BufferReader(blob)).schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError("its table is damaged") from exc
    return names[-3:] == list(STORAGE_COLUMNS) and not set(names[:-3]) & set(STORAGE_COLUMNS)


def open_table(directory: Path, raw: bytes, meta: dict[str, Any]
               ) -> tuple[pd.DataFrame, TableColumns, dict[str, PropertyInfo]] | None:
    """The table, lazy structure columns and property infos of a one-table folder, or ``None`` (read it whole).

    Raises:
        Replaced: If a newer version was committed meanwhile (the caller reads again).
        DatasetError: If the table does not match the sha256, counts or fingerprint recorded.
    """
    name, sha, content = directory.name, meta.get("parquet_sha256"), content_of(meta)
    known = recall_fingerprint(content) if content is not None else None
    if known is None or known != meta["fingerprint"]:  # unknown, or a meta.json to check in full
        return None
    blob = read_verified(directory, meta.get("parquet", PARQUET), sha, raw)
    try:
        plain = _plain_layout(blob)
    except DatasetError as exc:
        raise DatasetError(f"dataset {name!r} cannot be read ({exc}).") from exc
    if not plain:
        return None
    table = decode_table(blob, name)
    nsites = table["nsites"].to_numpy(dtype=np.int64) if "nsites" in table.columns else np.zeros(0, np.int64)
    if len(table) != meta["n_structures"] or len(nsites) != len(table) or int(nsites.sum()) != meta["n_sites"]:
        raise DatasetError(f"dataset {name!r} is broken: its table does not match the counts and fingerprint in meta.json.")
    props = properties_of(meta)
    missing = [p for p in props if p not in table.columns]
    if missing:
        raise DatasetError(f"dataset {name!r} is broken: meta.json lists properties without columns ({', '.join(missing[:5])}).")
    offsets = np.concatenate([[0], np.cumsum(nsites)]).astype(np.int64)
    return table, TableColumns(name, blob, offsets, int(meta["n_elements"])), props
