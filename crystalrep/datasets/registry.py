"""Named datasets on disk: where they live, saving one whole, loading, listing and deleting.

A named dataset is saved as ``dataset-<sha>.parquet`` (or shards, by
:class:`~crystalrep.datasets.writer.ShardWriter`) beside the current version, then ``meta.json``
naming it replaces the old one in a single rename: a reader, or a process killed at any instant,
sees the old version or the new one, whole. Writers of one name take turns (a file lock);
readers never wait.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crystalrep.datasets.schema import (
    DEFAULT_NAME,
    META,
    NAME_RE,
    PARQUET_RE,
    SHARD_RE,
    DatasetError,
)
from crystalrep.datasets.storage import read_meta
from crystalrep.datasets.table import Dataset
from crystalrep.store import atomic_write_bytes, atomic_write_json, crystalrep_home, inside


def datasets_home() -> Path:
    """Folder of user datasets: ``$CRYSTALREP_HOME/datasets``."""
    return crystalrep_home() / "datasets"


def default_dataset_dir() -> Path:
    """The built-in default dataset, shipped inside the package (``crystalrep/data/default``)."""
    return Path(__file__).resolve().parents[1] / "data" / DEFAULT_NAME


def check_name(name: str) -> str:
    """Validate a dataset name (letters, digits, ``_.-``; at most 64 characters; the whole string)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise DatasetError(f"dataset name {str(name)[:70]!r} is invalid; use letters, digits, '_', '.', '-' (max 64).")
    return name


def is_reserved(name: str) -> bool:
    """Whether ``name`` is the built-in dataset's, in any letter case (``DEFAULT`` would shadow it)."""
    return name.lower() == DEFAULT_NAME


def dataset_dir(name: str) -> Path:
    """Where a named dataset lives (the default one lives in the package).

    Raises:
        DatasetError: If the name is invalid, or its folder leads out of ``datasets_home()``.
    """
    check_name(name)
    if name == DEFAULT_NAME:
        return default_dataset_dir()
    try:
        return inside(datasets_home(), datasets_home() / name)
    except ValueError as exc:
        raise DatasetError(f"dataset {name!r}: {exc}") from None


def dataset_exists(name: str) -> bool:
    """Whether a dataset of that name has been committed (its ``meta.json`` exists)."""
    return (dataset_dir(name) / META).is_file()


@contextmanager
def writing(name: str) -> Iterator[None]:
    """Hold the exclusive writer lock of dataset ``name`` (readers never wait for it)."""
    datasets_home().mkdir(parents=True, exist_ok=True)
    with open(datasets_home() / f".{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def collect(folder: Path, keep: set[str]) -> None:
    """Remove tables and shards not in ``keep`` and dead writers' temp files (under the writer lock)."""
    for path in folder.iterdir():
        old = (PARQUET_RE.fullmatch(path.name) or SHARD_RE.fullmatch(path.name)) and path.name not in keep
        if old or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)


def check_writable(name: str, *, overwrite: bool) -> None:
    """Raise :class:`DatasetError` if ``name`` is reserved, or taken and not ``overwrite``."""
    if is_reserved(check_name(name)):
        raise DatasetError("the name 'default' is reserved for the built-in dataset.")
    if dataset_exists(name) and not overwrite:
        raise DatasetError(f"dataset {name!r} already exists; delete it first or choose another name.")


def save_dataset(ds: Dataset, *, overwrite: bool = False) -> Path:
    """Save under ``datasets_home()/<name>`` as one table; the name ``default`` is reserved (any case).

    See the module docstring for why a crash or a concurrent reader never sees half a version.
    """
    check_writable(ds.name, overwrite=True)
    target = dataset_dir(ds.name)
    blob = ds.parquet_bytes()
    parquet = f"dataset-{hashlib.sha256(blob).hexdigest()[:16]}.parquet"
    with writing(ds.name):
        check_writable(ds.name, overwrite=overwrite)
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(target / parquet, blob)
            atomic_write_json(target / META, ds.record(parquet, blob))  # the commit
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            raise
        collect(target, {parquet})
    return target


def load_dataset(name: str) -> Dataset:
    """Load and verify a dataset by name (``default`` is the built-in one); shards open lazily."""
    folder = dataset_dir(name)
    if not (folder / META).is_file():
        known = ", ".join(d["name"] for d in list_datasets()) or "none"
        raise DatasetError(f"no dataset named {name!r}; known: {known[:200]}.")
    ds = Dataset.load(folder)
    ds.name = name
    return ds


def list_datasets() -> list[dict[str, Any]]:
    """Summaries (name, n_structures, source, path) of the default and every user dataset.

    A dataset whose ``meta.json`` is unreadable or malformed is still listed, with
    ``n_structures`` None and an ``error`` sentence, so one broken folder never hides the others.
    """
    folders = [default_dataset_dir()] if (default_dataset_dir() / META).is_file() else []
    if datasets_home().is_dir():
        home = datasets_home().resolve()
        folders += sorted(p for p in datasets_home().iterdir()
                          if NAME_RE.fullmatch(p.name) and p.resolve().is_relative_to(home) and (p / META).is_file())
    out = []
    for folder in folders:
        row: dict[str, Any] = {"name": folder.name, "n_structures": None, "source": "", "path": str(folder)}
        try:
            meta = read_meta(folder)[1]
        except DatasetError as exc:
            row["error"] = str(exc)
        else:
            row.update(n_structures=meta["n_structures"], source=meta.get("source", ""))
        out.append(row)
    return out


def delete_dataset(name: str) -> None:
    """Remove a user dataset; the built-in default cannot be deleted."""
    if is_reserved(check_name(name)):
        raise DatasetError("the built-in default dataset cannot be deleted.")
    folder = dataset_dir(name)
    if not folder.is_dir():
        raise DatasetError(f"no dataset named {name!r}.")
    with writing(name):
        (folder / META).unlink(missing_ok=True)  # first: from here on nobody lists or reads it
        shutil.rmtree(folder, ignore_errors=True)
