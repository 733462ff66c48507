"""Import crystals from files into a :class:`~crystalrep.datasets.Dataset`, reporting bad rows.

Formats, detected from the path: CSV with a ``cif`` column (CDVAE / MP-20), a folder of
CIF/POSCAR files with an optional metadata CSV, extxyz, matbench JSON (``.json[.gz]``), and a
single CIF (each data block a row) or POSCAR. Rows that fail are skipped and reported as
:class:`Rejected`; the import only fails (:class:`DatasetError`) when no row is valid.
"""

from __future__ import annotations

import io
import logging
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from crystalrep.datasets import (
    DEFAULT_NAME,
    Dataset,
    DatasetError,
    PropertyInfo,
    check_name,
    dataset_dir,
    save_dataset,
)
from crystalrep.importers.files import extxyz_rows, file_kind, folder_rows, structure_file_rows
from crystalrep.importers.parse import Progress
from crystalrep.importers.rows import ImportReport, Rejected, Rows, build_report
from crystalrep.importers.tabular import csv_rows, json_rows
from crystalrep.structures import MAX_ATOMS
from crystalrep.structures import detect_format as sniff_format

__all__ = ["ImportReport", "Rejected", "check_target", "detect_format", "import_and_save", "import_path",
           "import_upload", "save_imported"]

log = logging.getLogger(__name__)

MAX_ZIP_MEMBERS = 20_000
MAX_ZIP_BYTES = 200 * 1024 * 1024

READERS: dict[str, Callable[..., Rows]] = {
    "csv": csv_rows,
    "folder": folder_rows,
    "extxyz": extxyz_rows,
    "json": json_rows,
    "cif": lambda path, *, source: structure_file_rows(path, source=source, kind="cif"),
    "poscar": lambda path, *, source: structure_file_rows(path, source=source, kind="poscar"),
}


def detect_format(path: str | Path) -> str:
    """The reader for a path: one of ``csv, folder, extxyz, json, cif, poscar``."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if path.name.lower().removesuffix(".gz").endswith(".csv"):
        return "csv"
    if (kind := file_kind(path.name)) is not None:
        return kind
    try:  # an unknown suffix (e.g. "Si.txt"): judge by the first few kB
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return "poscar"
    return sniff_format(path.name, head)


def check_target(name: str, *, overwrite: bool = False) -> None:
    """Raise :class:`DatasetError` unless ``name`` is a valid, writable dataset name."""
    if check_name(name) == DEFAULT_NAME:
        raise DatasetError("the name 'default' is reserved for the built-in dataset.")
    if dataset_dir(name).exists() and not overwrite:
        raise DatasetError(f"dataset {name!r} already exists; choose another name or overwrite it.")


def _import(path: Path, *, name: str, max_atoms: int, progress: Progress | None, workers: int | None,
            source: str | None, license: str, description: str,
            property_info: dict[str, PropertyInfo] | None, pre_rejected: list[Rejected]) -> ImportReport:
    check_name(name)
    if not path.exists():
        raise DatasetError(f"{path} does not exist.")
    fmt = detect_format(path)
    src = source or str(path.resolve())
    rows = READERS[fmt](path, source=src)
    rows.rejected[:0] = pre_rejected
    meta = {"source": src, "license": license, "description": description}
    return build_report(rows, name=name, max_atoms=max_atoms, workers=workers, progress=progress,
                        meta=meta, property_info=property_info)


def import_path(path: str | Path, *, name: str, max_atoms: int = MAX_ATOMS, progress: Progress | None = None,
                workers: int | None = None, source: str | None = None, license: str = "",
                description: str = "", property_info: dict[str, PropertyInfo] | None = None) -> ImportReport:
    """Import a file or folder into an in-memory dataset (nothing is written).

    Args:
        path: CSV, folder, ``.xyz``/``.extxyz``, ``.json[.gz]``, CIF or POSCAR.
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


def _safe_member(name: str) -> PurePosixPath | None:
    """The relative path of a zip member, or None if it would leave the target folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        return None
    return path


def _extract_zip(filename: str, data: bytes, dest: Path) -> tuple[Path, list[Rejected]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{filename}: is not a valid zip archive.") from exc
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise DatasetError(f"{filename}: holds {len(members):,} files; the limit is {MAX_ZIP_MEMBERS:,}.")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_BYTES:
        raise DatasetError(f"{filename}: unpacks to {total / 2**20:,.0f} MB; the limit is {MAX_ZIP_BYTES // 2**20} MB.")
    rejected: list[Rejected] = []
    for member in members:
        rel = _safe_member(member.filename)
        if rel is None:
            rejected.append(Rejected(member.filename, "its path leaves the archive folder (path traversal); skipped."))
            continue
        if rel.parts[0] == "__MACOSX" or any(p.startswith(".") for p in rel.parts):
            continue
        try:
            content = archive.read(member)
        except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
            rejected.append(Rejected(member.filename, f"the archive member cannot be unpacked ({exc})."))
            continue
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    root = dest
    while len(entries := list(root.iterdir())) == 1 and entries[0].is_dir():
        root = entries[0]
    files = [p for p in root.rglob("*") if p.is_file()]
    if not files:
        raise DatasetError(f"{filename}: holds no usable files.")
    return (files[0] if len(files) == 1 else root), rejected


def import_upload(filename: str, data: bytes, *, name: str, max_atoms: int = MAX_ATOMS,
                  progress: Progress | None = None, license: str = "", description: str = "") -> ImportReport:
    """Import an uploaded file: CIF, POSCAR, extxyz, CSV, JSON, or a ``.zip`` of such files.

    Zip members whose path leaves the archive are rejected; more than 20,000 members or
    200 MB unpacked is refused. Nothing is saved; see :func:`save_imported`.

    Raises:
        DatasetError: If the upload is unreadable, too large, or holds no valid structure.
    """
    check_name(name)
    safe = PurePosixPath(filename.replace("\\", "/")).name.lstrip(".") or "upload"
    with tempfile.TemporaryDirectory(prefix="crystalrep-upload-") as tmp:
        pre: list[Rejected] = []
        if safe.lower().endswith(".zip"):
            target, pre = _extract_zip(filename, data, Path(tmp) / "zip")
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
                    max_atoms: int = MAX_ATOMS, workers: int | None = None, source: str | None = None,
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
