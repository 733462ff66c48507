"""The unlabelled pretraining corpus: the built-in crystals plus every shared dataset, deduplicated.

Each folder under the shared data root with a ``PROVENANCE.md`` is one source: a folder of CIFs
(with its metadata CSV) or its single CSV/JSON file, imported once with
:func:`crystalrep.importers.import_path` and kept as the dataset ``shared-<folder>``. The corpus
drops every crystal that repeats an evaluation crystal (all of them: under k-fold CV every
evaluated row is a test row once) or an earlier source, by :mod:`crystalrep.study.dedup`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crystalrep.datasets import (
    BASE_COLUMNS,
    Dataset,
    DatasetError,
    PropertyInfo,
    dataset_dir,
    load_dataset,
    save_dataset,
)
from crystalrep.study.dedup import MATCH_RULE, MATCH_VERSION, first_occurrences

log = logging.getLogger(__name__)

__all__ = ["SharedSource", "build_corpus", "discover", "load_source", "shared_root"]

SHARED_ENV = "CRYSTALREP_SHARED_DATA"
DATA_SUFFIXES = (".csv", ".json", ".json.gz", ".csv.gz")


@dataclass(frozen=True)
class SharedSource:
    """One shared dataset folder: what to import and what its provenance says."""

    name: str
    path: Path
    what: str
    license: str


def shared_root(path: str | Path | None = None) -> Path | None:
    """``path``, else ``$CRYSTALREP_SHARED_DATA``, else ``../shared/data`` beside the checkout, if it exists."""
    env = os.environ.get(SHARED_ENV)
    candidate = Path(path) if path is not None else Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return candidate if candidate.is_dir() else None


def _provenance(text: str) -> tuple[str, str]:
    what = re.search(r"\*\*What it is:\*\*\s*(.+)", text)
    lic = re.search(r"^\|\s*license[^|]*\|\s*(.+?)\s*\|\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    return (what.group(1).strip() if what else ""), (lic.group(1).strip() if lic else "")


def discover(root: str | Path) -> list[SharedSource]:
    """Every folder of ``root`` with a ``PROVENANCE.md``, in name order.

    A folder holding CIF files is imported as a folder; otherwise its single CSV/JSON file is.

    Raises:
        DatasetError: If a folder has neither CIF files nor exactly one data file.
    """
    out = []
    for folder in sorted(p for p in Path(root).iterdir() if (p / "PROVENANCE.md").is_file()):
        what, lic = _provenance((folder / "PROVENANCE.md").read_text(errors="replace"))
        has_cifs = any(folder.rglob("*.cif"))
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES))
        if not has_cifs and len(files) != 1:
            raise DatasetError(f"{folder}: expected CIF files or one CSV/JSON file, found {[f.name for f in files]}.")
        out.append(SharedSource(folder.name, folder if has_cifs else files[0], what, lic))
    return out


def _signature(path: Path) -> str:
    """Names, sizes and modification times of the files behind a source (cheap change detection)."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        if f.is_file():
            st = f.stat()
            digest.update(f"{f.relative_to(path.parent)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_source(source: SharedSource, *, workers: int | None = None) -> Dataset:
    """The source as dataset ``shared-<name>``: imported on first use, re-imported when its files change."""
    name = f"shared-{source.name}"
    signature = _signature(source.path)
    if (dataset_dir(name) / "meta.json").is_file():
        cached = load_dataset(name)
        if cached.meta.get("source_signature") == signature:
            return cached
    from crystalrep.importers import import_path

    log.info("importing %s from %s", name, source.path)
    report = import_path(source.path, name=name, workers=workers, license=source.license, description=source.what)
    report.dataset.meta["source_signature"] = signature
    save_dataset(report.dataset, overwrite=True)
    return load_dataset(name)


def _concat(parts: Sequence[tuple[str, Dataset, np.ndarray]], name: str, meta: dict[str, Any]) -> Dataset:
    """Rows ``keep`` of each ``(label, dataset, keep)``, ids prefixed by the label, with a ``source`` column."""
    subsets = [(label, ds.subset(keep)) for label, ds, keep in parts]
    tables = []
    for label, s in subsets:
        table = s.table[list(BASE_COLUMNS)].copy()
        table["id"] = label + ":" + table["id"].astype(str)
        table["source"] = label
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    counts = np.concatenate([np.diff(s.offsets) for _, s in subsets])
    return Dataset(
        name=name, table=table,
        lattices=np.concatenate([s.lattices for _, s in subsets]),
        numbers=np.concatenate([s.numbers for _, s in subsets]),
        frac_coords=np.concatenate([s.frac_coords for _, s in subsets]),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        properties={"source": PropertyInfo("source", description="dataset the crystal came from", kind="categorical")},
        meta=meta,
    )


def build_corpus(sources: Sequence[tuple[str, Dataset]], exclude: Sequence[tuple[str, Dataset]]) -> tuple[Dataset, dict[str, Any]]:
    """Deduplicate ``sources`` (earlier wins) and drop every crystal that repeats one in ``exclude``.

    The result is saved as dataset ``cdssl-corpus-<key>`` (key = the inputs' fingerprints and the
    matching rule), so a second call with the same inputs only loads it.

    Args:
        sources: ``(label, dataset)`` pairs in order of priority.
        exclude: ``(label, dataset)`` evaluation sets whose crystals must not be pretrained on.

    Returns:
        The corpus and its statement: per source rows in, repeats of an evaluation crystal,
        repeats of an earlier source, rows kept; the rule; the total.
    """
    key = hashlib.sha256(repr(([(lab, ds.fingerprint) for lab, ds in sources],
                               [(lab, ds.fingerprint) for lab, ds in exclude], MATCH_VERSION)).encode()).hexdigest()[:12]
    name = f"cdssl-corpus-{key}"
    if (dataset_dir(name) / "meta.json").is_file():
        corpus = load_dataset(name)
        return corpus, dict(corpus.meta["corpus"])
    ordered = [ds for _, ds in exclude] + [ds for _, ds in sources]
    repeats = first_occurrences(ordered)
    n_ex = len(exclude)
    rows: list[dict[str, Any]] = []
    parts = []
    for k, (label, ds) in enumerate(sources):
        mine = [m for m in repeats if m.dataset == k + n_ex]
        dropped = {m.row for m in mine}
        keep = np.array([i for i in range(len(ds)) if i not in dropped], dtype=np.int64)
        parts.append((label, ds, keep))
        rows.append({"source": label, "dataset": ds.name, "rows": len(ds),
                     "evaluation_repeats": sum(m.match_dataset < n_ex for m in mine),
                     "duplicates": sum(m.match_dataset >= n_ex for m in mine), "kept": len(keep)})
    statement = {"rule": MATCH_RULE, "sources": rows, "n": int(sum(r["kept"] for r in rows)),
                 "excluded_sets": [{"label": lab, "dataset": ds.name, "rows": len(ds)} for lab, ds in exclude],
                 "examples": [{"row": f"{sources[m.dataset - n_ex][0]}:{ordered[m.dataset].ids[m.row]}",
                               "matches": ordered[m.match_dataset].ids[m.match_row]}
                              for m in repeats if m.dataset >= n_ex][:10]}
    corpus = _concat(parts, name, {"source": "crystalrep study cdssl corpus", "corpus": statement,
                                   "description": "unlabelled pretraining corpus, deduplicated, evaluation crystals removed"})
    save_dataset(corpus, overwrite=True)
    return load_dataset(name), statement
