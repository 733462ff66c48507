"""Reader for extxyz files: one row per frame, scalar ``info`` keys (and energies) as properties.

The file is split into frames by its atom-count lines, each count checked against ``max_atoms``
and against the lines present, before ase parses anything (a count line of ``1e9`` used to make
ase run away); each frame is then parsed on its own, so one bad frame costs only itself.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from crystalrep.datasets import DatasetError
from crystalrep.importers.bounded import TABLE, clip, limits, read_text, refusal, shown
from crystalrep.importers.rows import Rejected, Rows
from crystalrep.importers.tabular import id_column, property_names


def default_max_atoms() -> int:
    """The import's default cap on atoms per crystal: ``max_atoms`` of the current limits (env overrides apply)."""
    from crystalrep.limits import current_limits

    return current_limits().max_atoms


def _info_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else None


def _count(line: str) -> int | None:
    """The atom count on a frame's first line (``12``, or ``1e9`` written as a float), else None."""
    token = line.split(maxsplit=1)[0] if line.strip() else ""
    try:
        return int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            return None
        return int(value) if math.isfinite(value) and value.is_integer() else None


def split_frames(text: str, name: str, *, max_atoms: int) -> tuple[list[str], list[Rejected]]:
    """Cut extxyz text into frames by their count lines, before any parsing.

    A count that is not a number, above ``max_atoms``, or larger than the lines that follow ends
    the scan (nothing after it can be located): the frames before it are kept, the rest rejected.

    Raises:
        DatasetError: When the first frame is already unusable, or there are more than ``max_rows``.
    """
    lines = text.splitlines(keepends=True)
    frames: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        count, problem = _count(lines[i]) or 0, ""
        if count < 1:
            problem = f"line {i + 1} should hold the frame's atom count, not {clip(lines[i], 30)!r}"
        elif count > max_atoms:
            problem = f"declares {count:,} atoms, above the limit of {max_atoms:,} (max_atoms)"
        elif i + 2 + count > len(lines):
            problem = f"declares {count:,} atoms but only {max(len(lines) - i - 2, 0):,} lines follow"
        if problem:
            if not frames:
                raise DatasetError(clip(f"{shown(name)}: frame 0 {problem}."))
            return frames, [Rejected(f"frame {len(frames)}", f"it {problem}; the rest of the file was skipped.")]
        frames.append("".join(lines[i:i + 2 + count]))
        if len(frames) > limits().max_rows:
            raise refusal(name, "holds more frames than allowed", "max_rows")
        i += 2 + count
    return frames, []


def _read_frame(text: str) -> Any:
    from ase.io import read

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read(io.StringIO(text), index=0, format="extxyz")


def extxyz_rows(path: Path, *, source: str, max_atoms: int | None = None) -> Rows:
    """Rows of an extxyz file, one per frame; scalar ``info`` keys (and energies) become properties."""
    frames, rejected = split_frames(read_text(path, TABLE), path.name, max_atoms=max_atoms or default_max_atoms())
    if not frames:
        raise DatasetError(clip(f"{shown(path.name)}: holds no frames."))
    rows = Rows(format="extxyz", source=source)
    base = Path(path.name.removesuffix(".gz"))
    stem = base.stem if base.suffix.lower() in (".xyz", ".extxyz") else base.name
    for k, frame in enumerate(frames):
        label = f"frame {k}"
        try:
            atoms = _read_frame(frame)
        # ase raises many exception types on malformed frames; each means "unreadable frame".
        except Exception as exc:  # noqa: BLE001 - third-party parser boundary
            rows.rejected.append(Rejected(label, clip(f"it is not readable extxyz ({str(exc).strip()[:150]}).")))
            continue
        info = {key: _info_scalar(v) for key, v in atoms.info.items()}
        if atoms.calc is not None:
            for key in ("energy", "free_energy"):
                if key in atoms.calc.results:
                    info.setdefault(key, _info_scalar(np.asarray(atoms.calc.results[key]).reshape(-1)[0]))
        id_key = id_column(info)
        ident = str(info.pop(id_key)) if id_key and info.get(id_key) is not None else f"{stem}-{k}"
        if atoms.cell.rank < 3:
            rows.rejected.append(Rejected(label, "the frame has no periodic cell (no Lattice= in its header)."))
            continue
        names = property_names(str(key) for key in info)
        props = {names[str(key)]: v for key, v in info.items() if v is not None}
        item = ("arrays", (np.array(atoms.cell), atoms.numbers.copy(), atoms.positions.copy()))
        rows.add(label, ident, item, props)
    rows.rejected += rejected
    rows.descriptions = {c: f"info key {c!r} of {path.name}" for c in rows.properties}
    return rows
