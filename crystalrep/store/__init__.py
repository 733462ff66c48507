"""Content-addressed artifacts on disk: atomic writes and a sha256 manifest.

Every artifact lives at ``<home>/<kind>/<key>/`` with its files and a ``manifest.json``
that records each file's sha256. A file that no longer matches its manifest (truncated,
edited), a manifest that is not a non-empty ``{file: sha256}`` object, or one that lacks a file
the reader needs, is treated as missing, so the caller recomputes it instead of reading garbage.

An artifact is written whole into a hidden folder beside its place and renamed into it in one
step, so a reader (or a process killed mid-write) never sees half of one; when two processes
write the same key, the first complete one stays.

:meth:`Store.memo_json` and :meth:`Store.memo_array` are the one way to cache a computation:
read the verified artifact if it is there and parses (and the caller accepts it), else compute,
store and return. Anything else (missing, damaged, unparsable, rejected) is recomputed, never
misread.

* :mod:`~crystalrep.store.files`: atomic file writes, content keys, file hashes, the home folder.
* :mod:`~crystalrep.store.artifacts`: :class:`Store`, the manifest-checked artifacts and their memo.
"""

from __future__ import annotations

from crystalrep.store.artifacts import MANIFEST, RESULT, Store
from crystalrep.store.files import (
    STALE_TEMP_S,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    content_key,
    crystalrep_home,
    inside,
    sha256_file,
)

__all__ = ["MANIFEST", "RESULT", "STALE_TEMP_S", "Store", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text", "content_key", "crystalrep_home", "inside", "sha256_file"]
