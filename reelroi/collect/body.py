"""A POST body as the lines to send: JSON lines, or the elements of one JSON array. Pure, no I/O.

Nothing here judges a line: what cannot be read travels and is rejected
downstream with its bytes (SPEC 4). A body whose first non-blank byte is ``[``
and that parses as one JSON array gives one line per element, with the
element's exact bytes: a line break between its tokens (insignificant JSON
whitespace; a JSON string cannot hold a raw one) becomes a space, so the
element stays one line. Any other body is JSON lines, cut as ``reelroi
produce`` cuts a file: at LF, a CR before the LF dropped, blank lines skipped.
"""

from __future__ import annotations

import json
import re

import orjson

_WS = b" \t\r\n"
_BLANK = b" \t\r"  # SPEC 2
# a JSON string whole (so brackets and commas inside it are skipped), or one structural byte
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},]', re.DOTALL)


def body_lines(body: bytes) -> list[bytes]:
    """The non-blank lines ``body`` holds, in order."""
    if body.lstrip(_WS)[:1] == b"[" and _is_array(body):
        elements = _array_elements(body)
        if elements is not None:
            return elements
    return _lines(body)


def _lines(body: bytes) -> list[bytes]:
    parts = body.split(b"\n")
    out = []
    for n, part in enumerate(parts):
        line = part[:-1] if n < len(parts) - 1 and part.endswith(b"\r") else part
        if line.strip(_BLANK):
            out.append(line)
    return out


def _is_array(body: bytes) -> bool:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        # integers past 64 bits are valid JSON orjson refuses; read the shape only, numbers unconverted
        try:
            value = json.loads(body.decode("utf-8"), parse_int=_skip, parse_float=_skip, parse_constant=_skip)
        except (ValueError, RecursionError):
            return False
    return type(value) is list


def _skip(_: str) -> None:
    return None


def _array_elements(body: bytes) -> list[bytes] | None:
    """The exact bytes of each top-level element of a body already known to be one JSON array."""
    elements: list[bytes] = []
    depth = 0
    start = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token[:1] == b'"':
            continue
        if token in b"[{":
            depth += 1
            if depth == 1:
                start = match.end()
        elif token in b"]}":
            depth -= 1
            if depth == 0:
                _add(elements, body[start : match.start()])
                return elements
        elif depth == 1:  # a comma between elements
            _add(elements, body[start : match.start()])
            start = match.end()
    return None


def _add(elements: list[bytes], raw: bytes) -> None:
    element = raw.strip(_WS)
    if element:  # only ``[]`` has an empty one
        elements.append(element.replace(b"\r", b" ").replace(b"\n", b" "))
