"""One bounded ingestion path for every entry point (CLI, library, upload, zip, folder).

:mod:`~crystalrep.importers.api` is the public face; readers turn a source into rows
(:mod:`~crystalrep.importers.tabular`, :mod:`~crystalrep.importers.files`,
:mod:`~crystalrep.importers.extxyz`, :mod:`~crystalrep.importers.jsontables`,
:mod:`~crystalrep.importers.archive` for zips), which :mod:`~crystalrep.importers.parse` parses and
:mod:`~crystalrep.importers.rows` turns into a dataset. Large sources go through
:mod:`~crystalrep.importers.stream` instead (rows streamed by :mod:`~crystalrep.importers.streams`,
:mod:`~crystalrep.importers.extxyz` and :mod:`~crystalrep.importers.matbench`, written as shards):
``crystalrep data import``, ``crystalrep data fetch`` and dashboard uploads
(:mod:`~crystalrep.importers.upload`) all take that path.
Every read goes through :mod:`~crystalrep.importers.bounded`, within :mod:`crystalrep.limits`.
"""

from crystalrep.importers.api import import_and_save, import_path, import_upload, save_imported
from crystalrep.importers.rows import ImportReport, Rejected

__all__ = ["ImportReport", "Rejected", "import_and_save", "import_path", "import_upload", "save_imported"]
