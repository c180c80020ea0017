"""JSON text to Python values, in time and memory proportional to the text.

orjson parses almost every line. It cannot be the last word on numbers: it
turns integers beyond 64 bits into binary floats, underflows ``1e-2000000000``
to ``0.0`` and refuses ``1e400``, while SPEC section 2 says a JSON number is a
number whatever its size or exponent. So a line whose numbers matter (and any
line orjson refuses) is parsed again by the standard library's scanner with
hooks that keep each such number as its exact text, a ``JsonNumber``, which
``schemas.fields`` judges without ever materialising ``10**2000000000``.

Nesting deeper than ``MAX_DEPTH`` is refused before either parser sees the
line (SPEC 4 allows it), which also keeps the recursive standard scanner
far from Python's recursion limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

MAX_DEPTH = 64
# Integers up to this many digits become ``int``; longer ones stay text (int() of
# thousands of digits is refused by CPython and quadratic where allowed).
_INT_DIGITS = 40
_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonError(ValueError):
    """The bytes are not one JSON value (or nest too deep): ``invalid_json``."""


class JsonNumber:
    """A JSON number kept as its text: a fraction, an exponent or a long integer."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @property
    def is_integer(self) -> bool:
        """Written as a JSON integer (no fraction, no exponent)."""
        return "." not in self.text and "e" not in self.text and "E" not in self.text

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 40 else f"{self.text[:20]}…({len(self.text)} chars)"
        return f"JsonNumber({shown})"


def _int_or_text(text: str) -> int | JsonNumber:
    return int(text) if len(text) <= _INT_DIGITS else JsonNumber(text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_EXACT = json.JSONDecoder(parse_float=JsonNumber, parse_int=_int_or_text, parse_constant=_no_constants, strict=True)


def too_deep(raw: bytes) -> bool:
    """True if arrays and objects nest deeper than ``MAX_DEPTH`` outside strings.

    Escapes go first (an escaped backslash, then an escaped quote), so the
    strings left hold no quote and drop out with one linear regex; what
    remains is counted bracket by bracket, stopping as soon as it is too deep.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False  # the common case, decided by two C-speed counts
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    depth = 0
    for char in _STRING.sub(b"", unescaped).translate(None, _NOT_BRACKETS):
        if char in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif type(item) is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
    return False


def loads_exact(raw: bytes) -> Any:
    """Parse with every fraction, exponent and long integer kept as a ``JsonNumber``.

    Raises ``JsonError`` for what is not JSON: not UTF-8, bad syntax, NaN and
    Infinity, or a string holding a lone surrogate (not representable as UTF-8,
    which orjson refuses too).
    """
    if too_deep(raw):
        raise JsonError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        value = _EXACT.decode(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:  # json.JSONDecodeError, or a constant refused by the hook
        raise JsonError(str(exc)) from None
    if _has_surrogate(value):
        raise JsonError("a string holds a lone surrogate (not representable as UTF-8)")
    return value


def loads(raw: bytes) -> Any:
    """Parse one JSON text: orjson when it can, ``loads_exact`` when it cannot.

    Numbers come back as ``int`` or ``float`` on the fast path; callers that
    need a float's exact value ask ``loads_exact`` for the same bytes.
    """
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and too_deep(raw):  # counts first: the common case
        raise JsonError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        first = str(exc)
    try:  # e.g. 1e400, which orjson refuses: still a JSON number
        return loads_exact(raw)
    except JsonError:
        raise JsonError(first) from None
