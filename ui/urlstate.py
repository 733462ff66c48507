"""Every control of a view lives in the URL (``st.query_params``), so a shared link restores the view.

Call :func:`bind` for a control before drawing its widget (created without ``value``/``index``:
the value comes through session state, one source). ``bind`` gives the widget the value in the
URL when the URL is newer than what this session last wrote there (a link just opened), else
the value the widget already holds, else the default; invalid values fall back. It then writes
the value into the URL. A control that is not a widget (a map selection) binds the same way.

Streamlit clears the query string when the menu switches pages; each page then writes its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

PUBLISHED = "urlstate.published"  # param -> what this session last wrote into the URL
_UNSET = object()


@dataclass(frozen=True)
class Codec:
    """How a value is written in the URL: ``encode`` to text (a list: repeated params), ``decode`` back.

    ``decode`` raises ``ValueError`` (or ``KeyError``) for text it cannot read.
    """

    encode: Callable[[Any], str | list[str]]
    decode: Callable[[Any], Any]
    many: bool = False


def _bool(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


TEXT = Codec(str, str)
INT = Codec(lambda v: str(int(v)), int)
FLOAT = Codec(lambda v: f"{float(v):g}", float)
BOOL = Codec(lambda v: "1" if v else "0", _bool)
NAMES = Codec(lambda v: ",".join(v), lambda t: list(dict.fromkeys(s for s in t.split(",") if s)))  # no commas inside
OPTIONAL_INT = Codec(lambda v: "auto" if v is None else str(int(v)), lambda t: None if t == "auto" else int(t))
INT_PAIR = Codec(lambda v: f"{int(v[0])}-{int(v[1])}", lambda t: tuple(int(x) for x in t.split("-", 1)))


def row_codec(ids: Sequence[str]) -> Codec:
    """A dataset row written as its crystal id (stable across sessions; ``None``: no row)."""
    index = {k: i for i, k in enumerate(ids)}
    return Codec(lambda v: "" if v is None else ids[int(v)], lambda t: index[t])


def rows_codec(ids: Sequence[str]) -> Codec:
    """Several dataset rows as repeated ids (``?sel=a&sel=b``; ids may contain commas); unknown ids dropped."""
    index = {k: i for i, k in enumerate(ids)}
    return Codec(lambda v: [ids[int(r)] for r in v], lambda t: tuple(sorted({index[k] for k in t if k in index})),
                 many=True)


def _read(param: str, codec: Codec) -> Any:
    if param not in st.query_params:
        return None
    return st.query_params.get_all(param) if codec.many else st.query_params.get(param)


def _valid(value: Any, valid: Collection[Any] | Callable[[Any], bool] | None) -> bool:
    if valid is None:
        return True
    if callable(valid):
        return bool(valid(value))
    return value in valid


def write(param: str, value: Any, codec: Codec = TEXT) -> None:
    """Put ``value`` in the URL (an empty value removes the param) and remember it as written."""
    text = codec.encode(value) if value is not None else ""
    published = st.session_state.setdefault(PUBLISHED, {})
    published[param] = text
    if text in ("", []):
        if param in st.query_params:
            del st.query_params[param]
    elif _read(param, codec) != text:
        st.query_params[param] = text


def bind(key: str, param: str, default: Any, *, codec: Codec = TEXT,
         valid: Collection[Any] | Callable[[Any], bool] | None = None) -> Any:
    """Give session-state ``key`` its value (newer URL > kept value > default) and write it to the URL.

    Args:
        key: Session-state key (the widget's ``key``).
        param: URL query parameter.
        default: Value when neither the URL nor the session has a valid one.
        codec: How the value reads and writes as text.
        valid: Allowed values, or a predicate; anything else falls back.

    Returns:
        The value now in ``st.session_state[key]``.
    """
    published = st.session_state.setdefault(PUBLISHED, {})
    raw, value = _read(param, codec), _UNSET
    if raw is not None and raw != published.get(param):  # a link was opened: the URL wins once
        try:
            candidate = codec.decode(raw)
        except (ValueError, KeyError, IndexError):
            candidate = _UNSET
        if candidate is not _UNSET and _valid(candidate, valid):
            value = candidate
    if value is _UNSET:
        kept = st.session_state.get(key, _UNSET)
        value = kept if kept is not _UNSET and _valid(kept, valid) else default
    st.session_state[key] = value
    write(param, value, codec)
    return value
