"""Bytes to typed events: the one place where input is judged structurally.

``decode`` never raises on data. It returns either an event or an
``Invalid`` carrying the reason of SPEC section 4 and a human-readable detail;
the caller keeps the original bytes next to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import EVENT_TYPES, Event
from schemas.upcast import upcast

INVALID_JSON = "invalid_json"
UNKNOWN_TYPE = "unknown_type"
INVALID_FIELD = "invalid_field"


@dataclass(frozen=True, slots=True)
class Invalid:
    """A structural rejection: the reason code and what exactly was wrong."""

    reason: str
    detail: str
    event_id: str = ""
    type: str = ""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_EXACT_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constants)
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
# The field of each type that carries money or a rate: a JSON number there must stay exact.
_DECIMAL_FIELD = {
    "payment": "amount",
    "refund": "amount",
    "ad_spend": "amount",
    "ad_unlock": "revenue",
    "fx_rate": "rate",
    "promotion_plan": "commission_rate",
}


def _exact_numbers(raw: bytes) -> Any:
    # orjson turns 12.99 into a binary float; money must stay exact, so a line
    # with a fractional JSON number in a money field is parsed again keeping
    # its numbers decimal (floats anywhere else are invalid fields or ignored extras).
    return _EXACT_DECODER.decode(raw.decode("utf-8"))


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "event"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def decode(raw: bytes) -> Event | Invalid:
    """Parse and validate one JSON line (without its newline)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not _LONG_NUMBER.search(raw):
            return Invalid(INVALID_JSON, f"not UTF-8 JSON: {exc}")
        try:  # orjson stops at 64-bit integers; a huge amount is an invalid field, not bad JSON
            data = _exact_numbers(raw)
        except ValueError:
            return Invalid(INVALID_JSON, f"not UTF-8 JSON: {exc}")
    if type(data) is not dict:
        return Invalid(INVALID_JSON, f"JSON {type(data).__name__} is not an object")
    event_type = data.get("type")
    event_id = data.get("event_id")
    event_id = event_id if type(event_id) is str else ""
    if event_type is None:
        return Invalid(INVALID_FIELD, "type: missing", event_id)
    if type(event_type) is not str:
        return Invalid(INVALID_FIELD, "type: must be a string", event_id)
    model = EVENT_TYPES.get(event_type)
    if model is None:
        return Invalid(UNKNOWN_TYPE, f"unknown event type {event_type[:64]!r}", event_id, event_type[:64])
    decimal_field = _DECIMAL_FIELD.get(event_type)
    if decimal_field is not None and type(data.get(decimal_field)) is float:
        data = _exact_numbers(raw)
    # null counts as absent: optional fields default to None, and a null
    # required field fails validation exactly like a missing one.
    try:
        if "schema_version" in data:
            data = upcast(data)
        return model.__pydantic_validator__.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        return Invalid(INVALID_FIELD, _describe(exc), event_id, event_type)
    except ValueError as exc:  # an upcaster refused the payload
        return Invalid(INVALID_FIELD, str(exc), event_id, event_type)
