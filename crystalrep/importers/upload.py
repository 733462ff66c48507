"""An uploaded file imported through the streaming path, like ``crystalrep data import``.

The bytes are written to a private temporary folder inside the store
(``$CRYSTALREP_HOME/uploads/.upload-*``, so on the same disk as the dataset and never in the
working directory), imported by :func:`crystalrep.importers.stream.import_streaming` (chunks,
shards, one commit) and removed, whatever the outcome. Messages name the upload, never the
temporary path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from crystalrep.datasets import check_name
from crystalrep.importers.api import check_target
from crystalrep.importers.bounded import TABLE, limits, refusal
from crystalrep.importers.parse import Progress
from crystalrep.importers.rows import ImportReport
from crystalrep.store import crystalrep_home

UPLOADS = "uploads"


def upload_name(filename: str) -> str:
    """A safe local file name for an upload: its last path part, no leading dots, at most 120 characters."""
    return PurePosixPath(filename.replace("\\", "/")).name.lstrip(".")[-120:] or "upload"


def import_upload_streaming(filename: str, data: bytes, *, name: str, overwrite: bool = False,
                            max_atoms: int | None = None, progress: Progress | None = None,
                            workers: int | None = None, license: str = "",
                            description: str = "") -> ImportReport:
    """Import an uploaded file (CIF, POSCAR, extxyz, CSV, JSON, or a ``.zip`` of such) and save it as ``name``.

    Args:
        filename: The name the file was uploaded under (decides the format with its content).
        data: The file's bytes, at most ``max_decompressed_bytes``.
        name: Dataset name.
        overwrite: Replace an existing dataset of that name.
        max_atoms: Largest cell accepted; larger rows are rejected.
        progress: Called with ``(rows done, rows in the upload)``.
        workers: Processes parsing chunks (forked only where no other thread runs; else here).
        license: Recorded as ``meta["license"]``.
        description: Recorded as ``meta["description"]``.

    Returns:
        The committed dataset, the rejected rows and the format.

    Raises:
        DatasetError: If the name is taken, the upload is too large or unreadable, or holds no
            valid structure; nothing is saved then.
        OSError: If the store's disk is full or read-only.
    """
    check_target(check_name(name), overwrite=overwrite)
    if len(data) > getattr(limits(), TABLE):
        raise refusal(filename, "is too large", TABLE)
    from crystalrep.importers.stream import import_streaming

    folder = crystalrep_home() / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".upload-", dir=folder) as tmp:
        target = Path(tmp) / upload_name(filename)
        target.write_bytes(data)
        return import_streaming(target, name=name, overwrite=overwrite, workers=workers, max_atoms=max_atoms,
                                progress=progress, source=f"upload:{filename}", license=license,
                                description=description)
