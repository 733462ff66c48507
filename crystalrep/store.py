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
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RESULT = "result.json"  # the file of a :meth:`Store.memo_json` artifact
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
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
        if not kind.isidentifier() or not key or "/" in key or key.startswith(".") or not key.isprintable():
            raise ValueError(f"invalid artifact address {kind!r}/{key[:80]!r}")
        return inside(self.root, self.root / kind / key)

    def save_files(self, kind: str, key: str, files: dict[str, bytes], *, replace: bool = False) -> Path:
        """Write several files as one artifact, in one rename.

        Args:
            kind: Artifact kind (an identifier).
            key: Artifact key.
            files: File name -> content.
            replace: Replace a verified artifact of the same key (else the existing one stays,
                as when another process finished the same work first).

        Returns:
            The artifact folder.
        """
        folder = self.path(kind, key)
        bad = [name for name in files if not _FILE.fullmatch(name) or name == MANIFEST]
        if not files or bad:
            raise ValueError(f"invalid artifact file names {bad or 'none'} for {kind}/{key}.")
        folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder)
        work = folder.with_name(f".{key}.{secrets.token_hex(6)}.tmp")
        work.mkdir()
        try:
            manifest = {}
            for name, data in files.items():
                atomic_write_bytes(work / name, data)
                manifest[name] = hashlib.sha256(data).hexdigest()
            atomic_write_json(work / MANIFEST, manifest)
            if (replace or self.verified(kind, key) is None) and folder.exists():
                old = folder.with_name(f".{key}.{secrets.token_hex(6)}.old.tmp")
                try:
                    os.rename(folder, old)
                except FileNotFoundError:
                    pass
            try:
                os.rename(work, folder)
            except OSError:
                if self.verified(kind, key) is None:  # a racing writer left garbage, not a result
                    raise
                log.info("artifact %s/%s was written by another process first; keeping it", kind, key)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            for old in folder.parent.glob(f".{key}.*.old.tmp"):
                shutil.rmtree(old, ignore_errors=True)
        return folder

    def _manifest(self, kind: str, key: str, required: Iterable[str]) -> dict[str, str] | None:
        """The artifact's manifest if it is a well-formed, non-empty map naming every required file."""
        try:
            manifest = json.loads((self.path(kind, key) / MANIFEST).read_text())
        except (OSError, ValueError, RecursionError):
            return None
        if (not isinstance(manifest, dict) or not manifest
                or not all(isinstance(n, str) and _FILE.fullmatch(n) and n != MANIFEST for n in manifest)
                or not all(isinstance(d, str) and _SHA256.fullmatch(d) for d in manifest.values())):
            log.warning("artifact %s/%s: its manifest is malformed; rebuilding", kind, key)
            return None
        missing = set(required) - set(manifest)
        if missing:
            log.warning("artifact %s/%s: its manifest lacks %s; rebuilding", kind, key, ", ".join(sorted(missing)))
            return None
        return manifest

    def verified(self, kind: str, key: str, *, required: Iterable[str] = ()) -> Path | None:
        """Return the artifact folder if its manifest is well-formed and every file matches it, else ``None``.

        Args:
            kind: Artifact kind.
            key: Artifact key.
            required: Files the caller will read; a manifest without them does not verify.
        """
        folder = self.path(kind, key)
        manifest = self._manifest(kind, key, required)
        if manifest is None:
            return None
        for name, digest in manifest.items():
            file = folder / name
            try:
                ok = file.is_file() and sha256_file(file) == digest
            except OSError:
                ok = False
            if not ok:
                log.warning("artifact %s/%s: %s does not match its manifest; rebuilding", kind, key, name)
                return None
        return folder

    def load_files(self, kind: str, key: str, *, required: Iterable[str] = ()) -> dict[str, bytes] | None:
        """Contents of a verified artifact, each file read once and checked against its manifest.

        Returns ``None`` when the artifact is missing, damaged, or lacks a ``required`` file.
        """
        folder = self.path(kind, key)
        manifest = self._manifest(kind, key, required)
        if manifest is None:
            return None
        out = {}
        for name, digest in manifest.items():
            try:
                data = (folder / name).read_bytes()
            except OSError:
                data = b""
            if hashlib.sha256(data).hexdigest() != digest:
                log.warning("artifact %s/%s: %s does not match its manifest; rebuilding", kind, key, name)
                return None
            out[name] = data
        return out

    def save_array(self, kind: str, key: str, array: np.ndarray, meta: dict[str, Any], *,
                   replace: bool = False) -> Path:
        """Store an array (``array.npy``) and its metadata (``meta.json``); see :meth:`save_files`."""
        buf = _npy_bytes(array)
        meta_bytes = (json.dumps(meta, indent=2, sort_keys=True, default=_plain) + "\n").encode()
        return self.save_files(kind, key, {"array.npy": buf, "meta.json": meta_bytes}, replace=replace)

    def load_array(self, kind: str, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Return ``(array, meta)`` of a verified artifact, or ``None`` if missing or corrupt."""
        files = self.load_files(kind, key, required=("array.npy", "meta.json"))
        if files is None:
            return None
        try:
            array = np.load(io.BytesIO(files["array.npy"]), allow_pickle=False)
            meta = json.loads(files["meta.json"])
        except (ValueError, OSError, EOFError, RecursionError) as exc:
            log.warning("artifact %s/%s cannot be parsed (%s); rebuilding", kind, key, exc)
            return None
        if not isinstance(meta, dict):
            log.warning("artifact %s/%s: its meta.json is not an object; rebuilding", kind, key)
            return None
        return array, meta

    def memo_json(self, kind: str, key: str | Mapping[str, Any], compute: Callable[[], Any], *,
                  accept: Callable[[Any], bool] | None = None) -> tuple[Any, bool]:
        """The JSON value stored under ``(kind, key)``, or ``compute()``'s, stored there first.

        Args:
            kind: Artifact kind.
            key: Artifact key, or the inputs that make the result (hashed with :func:`content_key`).
            compute: Makes the value (JSON-serialisable; NaN and numpy scalars allowed).
            accept: Checks a stored value; a rejected one is recomputed and replaced.

        Returns:
            ``(value, from_cache)``.
        """
        key = key if isinstance(key, str) else content_key(dict(key))
        files = self.load_files(kind, key, required=(RESULT,))
        stale = files is not None
        if files is not None:
            try:
                value = json.loads(files[RESULT])
            except (ValueError, RecursionError) as exc:
                log.warning("artifact %s/%s cannot be parsed (%s); rebuilding", kind, key, exc)
            else:
                if accept is None or accept(value):
                    return value, True
        value = compute()
        blob = json.dumps(value, sort_keys=True, default=_plain, allow_nan=True).encode()
        self.save_files(kind, key, {RESULT: blob}, replace=stale)
        return json.loads(blob), False

    def memo_array(self, kind: str, key: str | Mapping[str, Any],
                   compute: Callable[[], tuple[np.ndarray, dict[str, Any]]], *,
                   accept: Callable[[np.ndarray, dict[str, Any]], bool] | None = None,
                   ) -> tuple[np.ndarray, dict[str, Any], bool]:
        """Like :meth:`memo_json` for an array and its metadata (:meth:`save_array`'s layout).

        Returns:
            ``(array, meta, from_cache)``.
        """
        key = key if isinstance(key, str) else content_key(dict(key))
        hit = self.load_array(kind, key)
        if hit is not None and (accept is None or accept(*hit)):
            return hit[0], hit[1], True
        array, meta = compute()
        self.save_array(kind, key, array, meta, replace=hit is not None)
        return array, meta, False

    def keys(self, kind: str) -> list[str]:
        """Keys of the artifacts of one kind (verified or not; hidden temp folders and symlinks excluded)."""
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    def delete(self, kind: str, key: str) -> None:
        """Remove one artifact if present."""
        shutil.rmtree(self.path(kind, key), ignore_errors=True)


def _remove_stale(folder: Path) -> None:
    """Delete hidden temp folders of ``folder``'s key left by writers that died long ago."""
    now = time.time()
    for tmp in folder.parent.glob(f".{folder.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            continue


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()
