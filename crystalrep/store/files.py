"""Files written whole or not at all, and the hashes that name and check them.

A file is written to a temporary name beside its place and moved there with ``os.replace``
(:func:`atomic_write_bytes`), so a reader or a process killed mid-write never sees half of it.
:func:`content_key` names an artifact by its inputs; :func:`sha256_file` checks a stored file;
:func:`remove_stale` clears the hidden temporary folders of writers that died.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "content_key", "crystalrep_home",
           "inside", "json_default", "npy_bytes", "remove_stale", "sha256_file"]

STALE_TEMP_S = 3600.0  # a hidden temp folder this old belongs to a writer that died


def crystalrep_home() -> Path:
    """Return the store root: ``$CRYSTALREP_HOME`` or ``~/.cache/crystalrep``."""
    env = os.environ.get("CRYSTALREP_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "crystalrep"


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root`` (a symlink may not lead out), else ``ValueError``."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path.name!r} leads outside {root.name}/ (a symbolic link?); refused.")
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The file gets the mode a plain ``open(path, "wb")`` would give (0o666 minus the umask,
    so 644 usually): ``tempfile.mkstemp`` would leave it private (600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create a new, uniquely named file beside ``path``; the kernel applies the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def json_default(obj: Any) -> Any:
    """``json.dumps``'s ``default``: numpy scalars and arrays as Python values, paths as strings."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def content_key(obj: Any) -> str:
    """Return a short, stable key (16 hex chars) for JSON-serialisable inputs."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=json_default)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def remove_stale(folder: Path) -> None:
    """Delete hidden temp folders of ``folder``'s key left by writers that died long ago."""
    now = time.time()
    for tmp in folder.parent.glob(f".{folder.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            continue


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in ``.npy`` format (C-contiguous, no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()
