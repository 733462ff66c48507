"""What every command shares: output (``--json`` or text), progress bars, option parsers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any


def progress(desc: str, enabled: bool) -> Callable[[int, int], None] | None:
    """A tqdm-backed progress callback (done, total) on stderr, or None when disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        # a new phase (fetch: bytes, then rows) changes the total or starts again from 0
        if bar is not None and (total != bar.total or done < bar.n):
            bar.close()
            bar = None
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del state["bar"]

    return update


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human-readable ``text``."""
    if args.json:
        print(json.dumps(payload, indent=2, sort_keys=True, default=str))
    else:
        print(text)


def names(text: str, option: str) -> list[str]:
    """Split a comma list (``a,b,c``); an empty list is a user error."""
    out = [part.strip() for part in text.split(",") if part.strip()]
    if not out:
        raise ValueError(f"{option} needs at least one name, got {text!r}.")
    return out


def ints(text: str, option: str) -> list[int]:
    """Parse ``5,10,25`` as integers (a user error otherwise)."""
    try:
        return [int(part) for part in names(text, option)]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated integers, got {text!r}.") from None


def parse_value(text: str) -> bool | int | float | str:
    """``true``/``false`` -> bool, then int, then float, else the string itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def pair(item: str, option: str) -> tuple[str, str]:
    """Split a ``key=value`` option value.

    Raises:
        ValueError: If the ``=`` or either side is missing.
    """
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"{option} takes key=value, got {item!r}.")
    return key.strip(), value.strip()


def records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as plain JSON objects (numpy scalars unboxed, NaN as null)."""
    return json.loads(frame.to_json(orient="records"))


def fmt(x: Any, spec: str = ".3f") -> str:
    """A number for a text table; NaN and None as ``-``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)
