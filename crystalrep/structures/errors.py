"""The one exception of structure reading, and the capture of third-party parser warnings.

Every failure is a :class:`StructureError`: one printable sentence naming the source and the
reason. pymatgen's and ase's warnings are captured and logged, never shown; the first one is
often the only reason a parser gives, so it is kept for the error message.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from crystalrep.limits import Limits, clean_message, current_limits

log = logging.getLogger(__name__)

MAX_WARNINGS = 20  # parser warnings kept per file; the first one is the reason given


class StructureError(ValueError):
    """A structure could not be read or is not a valid periodic crystal.

    The message is cleaned on construction: one printable line of at most
    ``Limits.max_message_chars`` characters, whatever text a third-party parser passed on.
    """

    def __init__(self, message: str) -> None:
        try:
            limit = current_limits().max_message_chars
        except ValueError:  # a malformed override must not hide the error being raised
            limit = Limits().max_message_chars
        super().__init__(clean_message(str(message), limit))


def short(text: object) -> str:
    """Third-party text as a short clause: one line, printable, at most 150 characters."""
    text = str(text) if not isinstance(text, BaseException) else (str(text) or type(text).__name__)
    return clean_message(text, 150).rstrip(".")


@contextmanager
def quiet(captured: list[str]) -> Iterator[None]:
    """Collect a parser's first warnings into ``captured`` instead of printing them (a broken CIF can raise 10⁵)."""

    def keep(message: Warning | str, *_: object, **__: object) -> None:
        captured.append(short(message))
        log.debug("parser warning: %s", captured[-1])
        if len(captured) >= MAX_WARNINGS:
            warnings.simplefilter("ignore")  # the rest cost time and say nothing new

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = keep
        yield


def first_reason(captured: list[str], default: str) -> str:
    """The first captured warning that gives a reason (pymatgen's "unusual" notes do not), else ``default``."""
    reasons = [c for c in captured if "unusual" not in c.lower()]
    return (reasons[0] if reasons else default).rstrip(".")
