"""Bytes to typed events: the one place where input is judged structurally.

``decode`` never raises on data. It returns either an event or an
``Invalid`` carrying the reason of SPEC section 4 and a human-readable detail;
the caller keeps the original bytes next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas import jsontext
from schemas.events import EVENT_TYPES, Event
from schemas.upcast import upcast

INVALID_JSON = "invalid_json"
UNKNOWN_TYPE = "unknown_type"
INVALID_FIELD = "invalid_field"
TOO_LARGE = "too_large"  # framing: a line over the configured size limit
INTERNAL_ERROR = "internal_error"  # a decoder bug: the line is kept, counted and alerted on, never fatal


@dataclass(frozen=True, slots=True)
class Invalid:
    """A structural rejection: the reason code and what exactly was wrong."""

    reason: str
    detail: str
    event_id: str = ""
    type: str = ""


# The fields of each type that carry money or a rate: a JSON number there must stay exact.
_DECIMAL_FIELDS = {
    "payment": ("amount",),
    "refund": ("amount",),
    "ad_spend": ("amount",),
    "ad_unlock": ("revenue",),
    "fx_rate": ("rate",),
    "promotion_plan": ("commission_rate",),
    "postback_rule": ("min_amount", "send_ratio"),
}


def _needs_exact_numbers(data: dict[str, Any], event_type: str) -> bool:
    # orjson hands fractions, exponents and integers beyond 64 bits over as binary
    # floats; where the value matters (money, rates, schema_version) the line is
    # parsed again keeping those numbers as their text.
    for name in _DECIMAL_FIELDS.get(event_type, ()):
        if type(data.get(name)) is float:
            return True
    return "schema_version" in data and type(data["schema_version"]) is float


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "event"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def decode(raw: bytes) -> Event | Invalid:
    """Parse and validate one JSON line (without its newline). Never raises."""
    try:
        return _decode(raw)
    except Exception as exc:  # noqa: BLE001 - a bug must not stop a worker: the line is kept with this reason
        return Invalid(INTERNAL_ERROR, f"decoder failed: {type(exc).__name__}: {str(exc)[:200]}")


def _decode(raw: bytes) -> Event | Invalid:
    try:
        data = jsontext.loads(raw)
    except jsontext.JsonError as exc:
        return Invalid(INVALID_JSON, f"not JSON: {exc}")
    if type(data) is not dict:
        return Invalid(INVALID_JSON, f"JSON {type(data).__name__} is not an object")
    event_type = data.get("type")
    event_id = data.get("event_id")
    event_id = event_id[:128] if type(event_id) is str else ""
    if event_type is None:
        return Invalid(INVALID_FIELD, "type: missing", event_id)
    if type(event_type) is not str:
        return Invalid(INVALID_FIELD, "type: must be a string", event_id)
    model = EVENT_TYPES.get(event_type)
    if model is None:
        return Invalid(UNKNOWN_TYPE, f"unknown event type {event_type[:64]!r}", event_id, event_type[:64])
    if _needs_exact_numbers(data, event_type):
        try:
            data = jsontext.loads_exact(raw)
        except jsontext.JsonError as exc:
            return Invalid(INVALID_JSON, f"not JSON: {exc}")
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
