"""Every bound on untrusted input, named in one place, and the checks that share them.

Each field of :class:`Limits` is one bound. :func:`current_limits` applies overrides from
environment variables named ``CRYSTALREP_LIMIT_<FIELD>`` (``CRYSTALREP_LIMIT_MAX_ATOMS=2000``
for users with big cells); a malformed value is refused with one sentence. The defaults refuse
none of the 15,395 real structures under ``../shared/data`` that parse at all (their extremes
are quoted per field), and refuse what would make a parser or a neighbour search run away.
"""

from __future__ import annotations

import ctypes
import dataclasses
import difflib
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

ENV_PREFIX = "CRYSTALREP_LIMIT_"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on one input file and on one crystal.

    Attributes:
        max_file_bytes: Bytes of one structure file, also after decompression. pymatgen reads
            CIF at ~3 MB/s and ~45 bytes of memory per byte: 4 MB take 1.4 s CPU and 190 MB
            (real files: at most 82 kB).
        max_decompressed_bytes: Bytes one gzip stream or zip member may inflate to, and bytes of
            a table read whole (a JSON list of structures, an upload).
        max_stream_bytes: Bytes of a table the import reads row by row (CSV, extxyz, matbench
            JSON), also after gunzipping. Memory does not grow with it (rows are parsed in
            chunks); it bounds the reading time: ~1M rows of 8 kB CIFs. MP-20-style CSVs take
            ~1.5 kB a row, so the 200 MB whole-table bound would stop them at ~130k rows.
        max_rows: Rows (structures) of one table or folder import.
        max_columns: Columns of one table.
        max_header_bytes: Bytes of a table's header line.
        max_cif_line_chars: Characters on one CIF line; CIF 1.1 allows 2048 (real: at most 159).
        max_sites: Atom sites listed in one structure, before symmetry (real: at most 246).
        max_atoms: Atoms in one cell after symmetry expansion (real: at most 616, refused).
        max_symops: Symmetry operations of one CIF block; the largest space groups have 192.
        max_site_operations: Listed sites times symmetry operations; pymatgen spends ~0.3 ms
            on each pair when it expands a CIF (real: at most 1,232).
        max_cell_length: Longest cell edge in Å (real: at most 158 Å).
        min_cell_length: Shortest cell edge in Å (real: at least 2.3 Å).
        min_cell_height: Smallest distance between opposite cell faces in Å (real: at least
            1.39 Å); thinner, skewed cells make periodic neighbour searches run for hours.
        min_volume_per_atom: Smallest cell volume per atom in Å³ (real: at least 4.8 Å³).
        max_volume_per_atom: Largest cell volume per atom in Å³ (real: at most 1,009 Å³).
        max_fractional_coordinate: Largest absolute fractional coordinate (real: at most 1.7).
        min_distance: Smallest distance between two atoms in Å (real: at least 0.74 Å).
        neighbour_radius: Radius in Å within which neighbours are counted (the graph cutoff).
        max_neighbours_per_site: Neighbours of one atom within ``neighbour_radius`` (real: at
            most 185).
        parse_seconds: Wall-clock seconds to read and validate one file.
        max_json_depth: Nesting depth of one JSON document (a pymatgen structure needs ~6).
        max_message_chars: Characters of one error message.
    """

    max_file_bytes: int = 4_000_000
    max_decompressed_bytes: int = 200_000_000
    max_stream_bytes: int = 8_000_000_000
    max_rows: int = 1_000_000
    max_columns: int = 1_000
    max_header_bytes: int = 65_536
    max_cif_line_chars: int = 2_048
    max_sites: int = 500
    max_atoms: int = 500
    max_symops: int = 192
    max_site_operations: int = 5_000
    max_cell_length: float = 1_000.0
    min_cell_length: float = 0.5
    min_cell_height: float = 0.5
    min_volume_per_atom: float = 1.0
    max_volume_per_atom: float = 5_000.0
    max_fractional_coordinate: float = 100.0
    min_distance: float = 0.5
    neighbour_radius: float = 6.0
    max_neighbours_per_site: int = 1_000
    parse_seconds: float = 10.0
    max_json_depth: int = 64
    max_message_chars: int = 300

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = int if isinstance(f.default, int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
                raise ValueError(f"limit {f.name} must be {'a whole' if kind is int else 'a'} number, got {value!r}.")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"limit {f.name} must be a positive finite number, got {value!r}.")
        for low, high in (("min_cell_length", "max_cell_length"), ("min_volume_per_atom", "max_volume_per_atom")):
            if getattr(self, low) >= getattr(self, high):
                raise ValueError(f"limit {low} must be below {high}.")
        if self.max_message_chars < 80:
            raise ValueError("limit max_message_chars must be at least 80 for a message to say anything.")

    def replace(self, **changes: Any) -> Limits:
        """A copy with some bounds changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


def env_name(field: str) -> str:
    """The environment variable that overrides one limit, e.g. ``CRYSTALREP_LIMIT_MAX_ATOMS``."""
    return ENV_PREFIX + field.upper()


def current_limits() -> Limits:
    """The default limits with every ``CRYSTALREP_LIMIT_<FIELD>`` override applied.

    Raises:
        ValueError: One sentence naming the variable, if an override is not a positive number
            of the field's kind, or names no limit.
    """
    known = {env_name(f.name): f for f in fields(Limits)}
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        guess = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {guess[0]}?" if guess else "the names are the fields of crystalrep.limits.Limits"
        raise ValueError(f"{unknown[0][:60]} names no limit; {hint}")
    changes: dict[str, Any] = {}
    for var, f in known.items():
        raw = os.environ.get(var)
        if raw is None or not raw.strip():
            continue
        whole = isinstance(f.default, int)
        try:
            number = float(raw.strip().replace("_", ""))
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number > 0 and (number.is_integer() or not whole)):
            raise ValueError(f"{var}={raw[:40]!r} is not a positive {'whole ' if whole else ''}number; "
                             f"unset it or give one such as {f.default}.")
        changes[f.name] = int(number) if whole else number
    try:
        return Limits(**changes)
    except ValueError as exc:
        raise ValueError(f"the {ENV_PREFIX}* overrides conflict: {exc}") from None


def clean_message(text: str, max_chars: int) -> str:
    """One printable line of at most ``max_chars`` characters (third-party text is often not)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text[: 4 * max_chars]).split())
    return line if len(line) <= max_chars else line[: max_chars - 1].rstrip() + "…"


def cell_problem(matrix: np.ndarray, n_atoms: int | None, limits: Limits) -> str | None:
    """Why a cell (rows = lattice vectors, Å) breaks a limit, or None if it is within them."""
    with np.errstate(all="ignore"):
        matrix = np.asarray(matrix, dtype=float)
        if matrix.shape != (3, 3):
            return f"the lattice is not a 3×3 matrix (shape {matrix.shape})"
        if not np.isfinite(matrix).all():
            return "the lattice contains NaN or infinite values"
        scale = np.maximum(np.abs(matrix).max(axis=1), 1e-300)  # no overflow to inf for 1e308
        lengths = scale * np.linalg.norm(matrix / scale[:, None], axis=1)
        for axis, length in zip("abc", lengths, strict=True):
            if length > limits.max_cell_length:
                return f"cell edge {axis} = {length:.4g} Å exceeds the limit of {limits.max_cell_length:g} Å ({env_name('max_cell_length')})"
            if length < limits.min_cell_length:
                return f"cell edge {axis} = {length:.3g} Å is below the limit of {limits.min_cell_length:g} Å ({env_name('min_cell_length')})"
        volume = abs(float(np.linalg.det(matrix)))
        if not volume > 1e-6:
            return "the cell volume is zero (degenerate lattice)"
        height = float((1.0 / np.linalg.norm(np.linalg.inv(matrix), axis=0)).min())
        if height < limits.min_cell_height:
            return (f"the cell is only {height:.3g} Å thick between opposite faces, below the limit of "
                    f"{limits.min_cell_height:g} Å (reduce the cell first; {env_name('min_cell_height')})")
    if n_atoms:
        per_atom = volume / n_atoms
        if per_atom < limits.min_volume_per_atom:
            return (f"the volume per atom, {per_atom:.3g} Å³, is below the limit of "
                    f"{limits.min_volume_per_atom:g} Å³ ({env_name('min_volume_per_atom')})")
        if per_atom > limits.max_volume_per_atom:
            return (f"the volume per atom, {per_atom:.4g} Å³, exceeds the limit of "
                    f"{limits.max_volume_per_atom:g} Å³ ({env_name('max_volume_per_atom')})")
    return None


class OutOfTime(BaseException):
    """Raised inside a thread whose time budget ran out.

    A BaseException, so that third-party ``except Exception`` blocks cannot swallow it.
    """


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    # CPython's documented hook for delivering an exception to another thread; None cancels one
    # that is still pending. It lands at the thread's next bytecode, so long C calls must be
    # bounded by the other limits (they are: sizes and counts are checked before pymatgen runs).
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


_IDLE_SECONDS = 1.0


class _Watchdog:
    """One daemon thread per process that interrupts threads whose budget ran out.

    One shared thread, not a timer per call: starting and joining a thread costs milliseconds
    on a busy machine, more than parsing a small CIF. It ends after a second without budgets.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread does not survive a fork

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._budgets: dict[int, list] = {}  # token -> [deadline, thread id, fired]
        self._next = 0
        self._wake_at = math.inf  # when the thread wakes next; only an earlier deadline needs it sooner
        self._thread: threading.Thread | None = None

    def enter(self, seconds: float) -> int:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crystalrep-time-budget", daemon=True)
                self._thread.start()
            self._next += 1
            deadline = time.monotonic() + seconds
            self._budgets[self._next] = [deadline, threading.get_ident(), False]
            if deadline < self._wake_at:  # waking the thread on every call costs a GIL hand-over
                self._cond.notify()
            return self._next

    def leave(self, token: int) -> bool:
        """Forget a budget; True if it ran out (its exception is then cancelled if still pending)."""
        with self._cond:
            fired = self._budgets.pop(token)[2]
            if fired:
                _raise_in(threading.get_ident(), None)
        return fired

    def _run(self) -> None:
        idle_since = None
        with self._cond:
            while True:
                now = time.monotonic()
                for entry in self._budgets.values():
                    if not entry[2] and entry[0] <= now:
                        entry[2] = True
                        _raise_in(entry[1], OutOfTime)
                if self._budgets:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= _IDLE_SECONDS:
                    # gone when unused: fork-based callers (parallel imports) look for a lone thread
                    self._thread, self._wake_at = None, math.inf
                    return
                self._wake_at = min((e[0] for e in self._budgets.values() if not e[2]), default=now + _IDLE_SECONDS)
                self._cond.wait(timeout=max(self._wake_at - now, 0.0))


_WATCHDOG: list[_Watchdog] = []  # created on first use: nothing starts at import time
_WATCHDOG_LOCK = threading.Lock()


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Interrupt the calling thread with :class:`OutOfTime` once ``seconds`` have passed.

    Works in any thread (Streamlit runs pages outside the main thread, so SIGALRM cannot be
    used). If the budget ran out, :class:`OutOfTime` is raised on leaving, even when the body
    finished in the same instant.
    """
    with _WATCHDOG_LOCK:
        if not _WATCHDOG:
            _WATCHDOG.append(_Watchdog())
        watchdog = _WATCHDOG[0]
    token = watchdog.enter(seconds)
    try:
        yield
    finally:
        if watchdog.leave(token):
            raise OutOfTime
