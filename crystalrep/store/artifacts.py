"""Artifacts addressed by ``(kind, key)``: folders of files checked against a sha256 manifest.

A file that no longer matches ``manifest.json``, a malformed manifest, or one that lacks a file
the reader needs, counts as missing, so the caller recomputes it. An artifact is written whole into
a hidden folder and renamed into place in one step; of two writers of one key the first stays.
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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from crystalrep.store.files import (
    atomic_write_bytes,
    atomic_write_json,
    content_key,
    crystalrep_home,
    inside,
    json_default,
    npy_bytes,
    remove_stale,
    sha256_file,
)

__all__ = ["MANIFEST", "RESULT", "Store"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RESULT = "result.json"  # the file of a :meth:`Store.memo_json` artifact
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


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
        remove_stale(folder)
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
        buf = npy_bytes(array)
        meta_bytes = (json.dumps(meta, indent=2, sort_keys=True, default=json_default) + "\n").encode()
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
        blob = json.dumps(value, sort_keys=True, default=json_default, allow_nan=True).encode()
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
