"""Import crystals from files into a :class:`~crystalrep.datasets.Dataset`, reporting bad rows.

Formats, detected by the one format table (:mod:`crystalrep.structures.formats`, name then
content): CSV with a ``cif`` column (CDVAE / MP-20), a folder of CIF/POSCAR files with an optional
metadata CSV, extxyz, matbench JSON (``.json[.gz]``), a single CIF (each data block a row) or
POSCAR, and a zip of any of these. Rows that fail are skipped and reported as
:class:`Rejected`; the import only fails (:class:`DatasetError`) when no row is valid, or when a
source is over a limit of :mod:`crystalrep.limits` (one sentence naming the file and the limit).

A zip (an upload or a path) is unpacked by :mod:`crystalrep.importers.archive`, member by member
within limits, and its content imported as above.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from crystalrep.datasets import (
    Dataset,
    DatasetError,
    PropertyInfo,
    check_name,
    dataset_exists,
    is_reserved,
    save_dataset,
)
from crystalrep.importers.archive import extract_zip
from crystalrep.importers.bounded import TABLE, clip, limits, open_bytes, read_bytes, refusal, shown
from crystalrep.importers.extxyz import extxyz_rows
from crystalrep.importers.files import folder_rows, structure_file_rows
from crystalrep.importers.jsontables import json_rows
from crystalrep.importers.parse import Progress
from crystalrep.importers.rows import ImportReport, Rejected, Rows, build_report
from crystalrep.importers.tabular import csv_rows
from crystalrep.structures.formats import SNIFF_CHARS, detect, needs_content

__all__ = ["ImportReport", "Rejected", "check_target", "detect_format", "import_and_save", "import_path",
           "import_upload", "save_imported"]

log = logging.getLogger(__name__)


# format (crystalrep.structures.formats.TABLE) -> reader; a zip is unpacked first, then imported as what it holds
READERS: dict[str, Callable[..., Rows]] = {
    "csv": csv_rows,
    "folder": folder_rows,
    "extxyz": extxyz_rows,
    "json": json_rows,
    "matbench": json_rows,
    "cif": lambda path, *, source: structure_file_rows(path, source=source, kind="cif"),
    "poscar": lambda path, *, source: structure_file_rows(path, source=source, kind="poscar"),
}


def _head(path: Path) -> str | None:
    """The first characters of a file (gunzipped for ``.gz``), or None when it cannot be read."""
    try:
        with open_bytes(path, TABLE) as fh:
            return fh.read(SNIFF_CHARS).decode("utf-8", errors="replace")
    except DatasetError:  # the reader chosen by name reports it in its own sentence
        return None


def detect_format(path: str | Path) -> str:
    """The reader for a path: ``folder`` or a format of :data:`crystalrep.structures.formats.TABLE`.

    The name decides, the first few kB when it does not (``Si.txt``) or when it is ``.json``
    (matbench table or pymatgen dicts); text nothing claims is read as POSCAR.
    """
    path = Path(path)
    if path.is_dir():
        return "folder"
    head = _head(path) if needs_content(path.name) else None
    return detect(path.name, head) or "poscar"


def _unzip(filename: str, data: bytes, tmp: Path) -> tuple[Path, list[Rejected]]:
    """Unpack a zip into ``tmp``; the file or folder to import and the rejected members (no zip in a zip)."""
    target, rejected = extract_zip(filename, data, tmp / "zip")
    if target.is_file() and detect_format(target) == "zip":
        raise DatasetError(clip(f"{shown(filename)}: holds only another zip archive; unpack it first."))
    return target, rejected


def check_target(name: str, *, overwrite: bool = False) -> None:
    """Raise :class:`DatasetError` unless ``name`` is a valid, writable dataset name.

    ``default`` is reserved in any letter case; a folder left by an import killed before it
    committed does not count as an existing dataset.
    """
    if is_reserved(check_name(name)):
        raise DatasetError("the name 'default' is reserved for the built-in dataset.")
    if dataset_exists(name) and not overwrite:
        raise DatasetError(f"dataset {name!r} already exists; choose another name or overwrite it.")


def _import(path: Path, *, name: str, max_atoms: int | None, progress: Progress | None, workers: int | None,
            source: str | None, license: str, description: str,
            property_info: dict[str, PropertyInfo] | None, pre_rejected: list[Rejected]) -> ImportReport:
    check_name(name)
    if not path.exists():
        raise DatasetError(clip(f"{shown(str(path))} does not exist."))
    fmt = detect_format(path)
    src = source or str(path.resolve())
    if fmt == "zip":
        with tempfile.TemporaryDirectory(prefix="crystalrep-zip-") as tmp:
            target, rejected = _unzip(path.name, read_bytes(path, TABLE), Path(tmp))
            return _import(target, name=name, max_atoms=max_atoms, progress=progress, workers=workers,
                           source=src, license=license, description=description,
                           property_info=property_info, pre_rejected=[*pre_rejected, *rejected])
    options = {"max_atoms": max_atoms} if fmt in ("extxyz", "folder") else {}
    rows = READERS[fmt](path, source=src, **options)
    rows.rejected[:0] = pre_rejected
    meta = {"source": src, "license": license, "description": description}
    return build_report(rows, name=name, max_atoms=max_atoms, workers=workers, progress=progress,
                        meta=meta, property_info=property_info)


def import_path(path: str | Path, *, name: str, max_atoms: int | None = None, progress: Progress | None = None,
                workers: int | None = None, source: str | None = None, license: str = "",
                description: str = "", property_info: dict[str, PropertyInfo] | None = None) -> ImportReport:
    """Import a file or folder into an in-memory dataset (nothing is written).

    Args:
        path: CSV, folder, ``.xyz``/``.extxyz``, ``.json[.gz]``, CIF, POSCAR or a ``.zip`` of such files.
        name: Dataset name (letters, digits, ``_.-``).
        max_atoms: Largest cell accepted; larger rows are rejected.
        progress: Called with ``(done, total)``; total is twice the rows (parsing, then labelling).
        workers: Parsing processes; ``None`` uses 2 above 500 rows on a machine with 2+ cores.
        source: Recorded as ``meta["source"]``; defaults to the absolute path.
        license: Recorded as ``meta["license"]``.
        description: Recorded as ``meta["description"]``.
        property_info: Units / descriptions for named property columns.

    Returns:
        The dataset, the rejected rows and the detected format.

    Raises:
        DatasetError: If the path is missing or unreadable, or no row is valid.
    """
    return _import(Path(path).expanduser(), name=name, max_atoms=max_atoms, progress=progress,
                   workers=workers, source=source, license=license, description=description,
                   property_info=property_info, pre_rejected=[])


def import_upload(filename: str, data: bytes, *, name: str, max_atoms: int | None = None,
                  progress: Progress | None = None, license: str = "", description: str = "") -> ImportReport:
    """Import an uploaded file: CIF, POSCAR, extxyz, CSV, JSON, or a ``.zip`` of such files.

    Zip members whose path leaves the archive, encrypted ones and ones compressed like a zip
    bomb are rejected; more than 20,000 members or more than ``max_decompressed_bytes`` unpacked
    is refused. Nothing is saved; see :func:`save_imported`.

    Raises:
        DatasetError: If the upload is unreadable, too large, or holds no valid structure.
    """
    check_name(name)
    if len(data) > getattr(limits(), TABLE):
        raise refusal(filename, "is too large", TABLE)
    safe = PurePosixPath(filename.replace("\\", "/")).name.lstrip(".")[-120:] or "upload"
    head = data[:SNIFF_CHARS].decode("utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="crystalrep-upload-") as tmp:
        pre: list[Rejected] = []
        if detect(safe, head) == "zip":
            target, pre = _unzip(filename, data, Path(tmp))
        else:
            target = Path(tmp) / safe
            target.write_bytes(data)
        return _import(target, name=name, max_atoms=max_atoms, progress=progress, workers=None,
                       source=f"upload:{filename}", license=license, description=description,
                       property_info=None, pre_rejected=pre)


def save_imported(dataset: Dataset, *, overwrite: bool = False) -> Path:
    """Save a dataset as a whole (see :func:`~crystalrep.datasets.save_dataset`).

    An existing dataset of the same name stays untouched unless the new one is complete.
    """
    check_target(dataset.name, overwrite=overwrite)
    return save_dataset(dataset, overwrite=overwrite)


def import_and_save(path: str | Path, *, name: str, overwrite: bool = False, progress: Progress | None = None,
                    max_atoms: int | None = None, workers: int | None = None, source: str | None = None,
                    license: str = "", description: str = "",
                    property_info: dict[str, PropertyInfo] | None = None) -> ImportReport:
    """Import fully in memory, then save atomically under ``name``; see :func:`import_path`.

    Raises:
        DatasetError: If the name is taken (and not ``overwrite``), or the import fails.
    """
    check_target(name, overwrite=overwrite)
    report = import_path(path, name=name, progress=progress, max_atoms=max_atoms, workers=workers,
                         source=source, license=license, description=description,
                         property_info=property_info)
    save_imported(report.dataset, overwrite=overwrite)
    return report
