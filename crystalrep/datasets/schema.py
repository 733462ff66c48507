"""What a dataset record is: names of columns and files, the error type, and ``meta.json`` checks.

``meta.json`` is the commit record of a dataset folder. It names either one parquet table
(``parquet`` + ``parquet_sha256``) or a list of parquet shards (``shards``: file, sha256, rows,
sites each), so a reader verifies every byte it uses against the record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMAT_VERSION = 1
BASE_COLUMNS = ("id", "formula", "chemsys", "spacegroup", "crystal_system", "nsites")
STORAGE_COLUMNS = ("lattice", "numbers", "frac")  # parquet columns holding the structures
RESERVED_COLUMNS = BASE_COLUMNS + STORAGE_COLUMNS  # no property may take one of these names
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # always fullmatch: "$" lets a newline pass
DEFAULT_NAME = "default"
PARQUET = "dataset.parquet"
META = "meta.json"
PARQUET_RE = re.compile(r"dataset(-[0-9a-f]{16})?\.parquet")
SHARD_RE = re.compile(r"shard-[0-9a-f]{16}\.parquet")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
KINDS = ("numeric", "categorical")
MAX_META_BYTES = 16 * 2**20  # meta.json holds counts, units, shards and up to 200 rejected rows
MAX_SHARDS = 100_000
RECORD_KEYS = ("properties", "name", "format_version", "n_structures", "n_sites", "n_elements", "fingerprint",
               "parquet", "parquet_sha256", "shards")  # the record's own keys; the rest is provenance


class DatasetError(ValueError):
    """A dataset is missing, malformed, or cannot be built as asked."""


@dataclass(frozen=True)
class PropertyInfo:
    """What a property column holds.

    Args:
        name: Column name.
        unit: Physical unit ("" when dimensionless or categorical).
        description: What the values are, including how they were obtained.
        kind: ``"numeric"`` or ``"categorical"``.
    """

    name: str
    unit: str = ""
    description: str = ""
    kind: str = "numeric"


def _count(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def shards_problem(shards: object) -> str | None:
    """Why a ``shards`` entry of ``meta.json`` is malformed (one phrase), or ``None``."""
    if not isinstance(shards, list) or not 0 < len(shards) <= MAX_SHARDS:
        return "its shard list is malformed"
    for entry in shards:
        if (not isinstance(entry, dict) or set(entry) != {"file", "sha256", "rows", "sites"}
                or not isinstance(entry["file"], str) or not SHARD_RE.fullmatch(entry["file"])
                or not isinstance(entry["sha256"], str) or not SHA256_RE.fullmatch(entry["sha256"])
                or not _count(entry["rows"]) or not _count(entry["sites"])):
            return "an entry of its shard list is malformed"
    return None


def meta_problem(meta: object) -> str | None:
    """Why a parsed ``meta.json`` is not a dataset record (one phrase), or ``None`` when it is."""
    if not isinstance(meta, dict):
        return "meta.json is not a JSON object"
    if meta.get("format_version") != FORMAT_VERSION or isinstance(meta.get("format_version"), bool):
        return f"its format_version is {str(meta.get('format_version'))[:20]}, expected {FORMAT_VERSION}"
    for key in ("n_structures", "n_sites", "n_elements"):
        if not _count(meta.get(key)):
            return f"its {key} is not a count"
    if not isinstance(meta.get("fingerprint"), str) or not SHA256_RE.fullmatch(meta["fingerprint"]):
        return "its fingerprint is not a sha256"
    if "parquet" in meta and not (isinstance(meta["parquet"], str) and PARQUET_RE.fullmatch(meta["parquet"])):
        return "its parquet file name is malformed"
    sha = meta.get("parquet_sha256")
    if sha is not None and not (isinstance(sha, str) and SHA256_RE.fullmatch(sha)):
        return "its parquet_sha256 is not a sha256"
    if "shards" in meta:
        if "parquet" in meta:
            return "it names both a table and shards"
        if (problem := shards_problem(meta["shards"])) is not None:
            return problem
        if (sum(s["rows"] for s in meta["shards"]) != meta["n_structures"]
                or sum(s["sites"] for s in meta["shards"]) != meta["n_sites"]):
            return "its shard counts do not add up to its totals"
    for key in ("name", "source", "license", "description", "format"):
        if key in meta and not isinstance(meta[key], str):
            return f"its {key} is not text"
    props = meta.get("properties", {})
    if not isinstance(props, dict):
        return "its properties are not a JSON object"
    fields = {"name", "unit", "description", "kind"}
    for name, info in props.items():
        if (not isinstance(info, dict) or not set(info) <= fields
                or not all(isinstance(v, str) for v in info.values()) or info.get("kind", "numeric") not in KINDS):
            return f"its entry for property {str(name)[:40]!r} is malformed"
    return None
