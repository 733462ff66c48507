"""Content-addressed artifacts on disk: atomic writes and a sha256 manifest.

Every artifact lives at ``<home>/<kind>/<key>/`` with its files and a ``manifest.json``
that records each file's sha256. A file that no longer matches its manifest (truncated,
edited) is treated as missing, so the caller recomputes it instead of reading garbage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def crystalrep_home() -> Path:
    """Return the store root: ``$CRYSTALREP_HOME`` or ``~/.cache/crystalrep``."""
    env = os.environ.get("CRYSTALREP_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "crystalrep"


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
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_plain) + "\n")


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def content_key(obj: Any) -> str:
    """Return a short, stable key (16 hex chars) for JSON-serialisable inputs."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class Store:
    """Artifacts addressed by ``(kind, key)`` under a root folder.

    Args:
        root: Folder of the store; defaults to :func:`crystalrep_home`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else crystalrep_home()

    def __repr__(self) -> str:
        return f"Store(root={str(self.root)!r})"

    def path(self, kind: str, key: str) -> Path:
        """Folder of one artifact (it may not exist)."""
        if not kind.isidentifier() or not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid artifact address {kind!r}/{key!r}")
        return self.root / kind / key

    def save_files(self, kind: str, key: str, files: dict[str, bytes]) -> Path:
        """Write several files as one artifact; the manifest is written last."""
        folder = self.path(kind, key)
        manifest = {}
        for name, data in files.items():
            atomic_write_bytes(folder / name, data)
            manifest[name] = hashlib.sha256(data).hexdigest()
        atomic_write_json(folder / MANIFEST, manifest)
        return folder

    def verified(self, kind: str, key: str) -> Path | None:
        """Return the artifact folder if every file matches its manifest, else ``None``."""
        folder = self.path(kind, key)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        for name, digest in manifest.items():
            file = folder / name
            if not file.is_file() or sha256_file(file) != digest:
                log.warning("artifact %s/%s: %s does not match its manifest; rebuilding", kind, key, name)
                return None
        return folder

    def save_array(self, kind: str, key: str, array: np.ndarray, meta: dict[str, Any]) -> Path:
        """Store an array (``array.npy``) and its metadata (``meta.json``)."""
        buf = _npy_bytes(array)
        meta_bytes = (json.dumps(meta, indent=2, sort_keys=True, default=_plain) + "\n").encode()
        return self.save_files(kind, key, {"array.npy": buf, "meta.json": meta_bytes})

    def load_array(self, kind: str, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Return ``(array, meta)`` of a verified artifact, or ``None`` if missing or corrupt."""
        folder = self.verified(kind, key)
        if folder is None:
            return None
        array = np.load(folder / "array.npy", allow_pickle=False)
        meta = json.loads((folder / "meta.json").read_text())
        return array, meta

    def keys(self, kind: str) -> list[str]:
        """Keys of the artifacts of one kind (verified or not)."""
        base = self.root / kind
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def delete(self, kind: str, key: str) -> None:
        """Remove one artifact if present."""
        shutil.rmtree(self.path(kind, key), ignore_errors=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()
