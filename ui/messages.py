"""How the pages turn an exception into the one sentence they show (one helper for every page)."""

from __future__ import annotations

__all__ = ["sentence"]


def sentence(exc: BaseException) -> str:
    """The first line of an exception's message as one sentence (ending with ``.``, ``!`` or ``?``).

    An empty message falls back to the exception's type name.
    """
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    return text if text.endswith((".", "!", "?")) else text + "."
