"""Field types shared by every event: ids, timestamps, money, rates, currencies.

Each type is a pydantic ``Annotated`` alias with a *plain* validator, so pydantic
does not coerce first and then check: a value either has exactly the SPEC form
or it is an ``invalid_field`` rejection. Each also carries its JSON Schema, which
``reelroi schema`` publishes for producers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import PlainValidator, StringConstraints, WithJsonSchema

from schemas.jsontext import JsonNumber

MONEY_LIMIT = Decimal(10) ** 12
MONEY_MAX_PLACES = 4
BEYOND_ANY_VERSION = 2**63 - 1
_CACHE_LIMIT = 65_536
_CACHED_LENGTH = 64
T = TypeVar("T")

_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")


_JSON_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?)([0-9]+))?")
# An exponent of this many digits or more (|e| >= 10^17) puts any non-zero value
# far outside money's range, or past any fraction a decimal can hold.
_HUGE_EXPONENT_DIGITS = 18


def _number(text: str, what: str, max_places: int | None) -> Decimal:
    """The exact value of a JSON number's text, judged from its digits and exponent alone.

    ``1e-2000000000`` or a 5,000-digit integer is decided by counting, never by
    building the number, so the cost is proportional to the text.
    """
    match = _JSON_NUMBER.fullmatch(text)
    if match is None:  # the parser only hands over JSON number texts
        raise ValueError(f"{what} is not a JSON number")
    negative, whole, fraction, exp_sign, exp_digits = match.groups(default="")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return Decimal(0)  # zero in any spelling, -0 included
    if negative:
        raise ValueError(f"{what} must not be negative")
    significant = digits.rstrip("0")
    exp_digits = exp_digits.lstrip("0") or "0"
    if len(exp_digits) >= _HUGE_EXPONENT_DIGITS:
        if exp_sign != "-":
            raise ValueError(f"{what} must be below 10^12")
        if max_places is not None:
            raise ValueError(f"{what} has more than {max_places} fractional digits")
        raise ValueError(f"{what} has an exponent beyond -10^17")
    # value = significant * 10^exponent, with no trailing zeros left in ``significant``
    exponent = int(exp_sign + exp_digits) - len(fraction) + (len(digits) - len(significant))
    if exponent + len(significant) > 12:  # the value's leading digit sits at 10^12 or above
        raise ValueError(f"{what} must be below 10^12")
    if max_places is not None and -exponent > max_places:
        raise ValueError(f"{what} has more than {max_places} fractional digits")
    return Decimal(f"{significant}E{exponent}")


def _decimal_text(value: str, what: str, max_places: int | None) -> Decimal:
    """A decimal string: plain digits with one optional point."""
    if not _DECIMAL_TEXT.fullmatch(value):
        raise ValueError(f"{what} must be plain digits with one optional point, got {value[:40]!r}")
    whole, _, fraction = value.partition(".")
    if len(whole.lstrip("0")) > 12:
        raise ValueError(f"{what} must be below 10^12")
    fraction = fraction.rstrip("0")
    if max_places is not None and len(fraction) > max_places:
        raise ValueError(f"{what} has more than {max_places} fractional digits")
    # exact, without the zeros that only lengthen it (a 1 MiB "1.1000…0" is 1.1)
    amount = Decimal(f"{whole.lstrip('0') or '0'}.{fraction}" if fraction else whole.lstrip("0") or "0")
    if amount >= MONEY_LIMIT:
        raise ValueError(f"{what} must be below 10^12")
    return amount


def _decimal(value: Any, what: str, max_places: int | None) -> Decimal:
    """A non-negative exact decimal below 10^12 from a decimal string or a JSON number.

    JSON numbers arrive as ``int`` (orjson, up to 64 bits) or, when the line had
    a fraction, an exponent or a long integer, as the ``JsonNumber`` text the
    exact parser kept (never as a binary float).
    """
    if type(value) is str:
        return _decimal_text(value, what, max_places)
    if type(value) is int:
        if value < 0:
            raise ValueError(f"{what} must not be negative")
        if value >= MONEY_LIMIT:
            raise ValueError(f"{what} must be below 10^12")
        return Decimal(value)
    if type(value) is JsonNumber:
        return _number(value.text, what, max_places)
    raise ValueError(f"{what} must be a decimal string or a JSON number, got {type(value).__name__}")


def _cached(parse: Callable[[Any], T]) -> Callable[[Any], T]:
    """Memoise a parser on string inputs: timestamps, amounts and currencies repeat a lot.

    Errors are not cached (they raise), and the cache is simply dropped when it
    grows past a bound, which keeps memory flat on endless streams.
    """
    cache: dict[str, T] = {}

    def parse_cached(value: Any) -> T:
        if type(value) is str and len(value) <= _CACHED_LENGTH:  # a long value is rare: not worth its memory
            hit = cache.get(value)
            if hit is not None:
                return hit
            result = parse(value)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[value] = result
            return result
        return parse(value)

    parse_cached.__doc__ = parse.__doc__
    parse_cached.__name__ = parse.__name__
    return parse_cached


@_cached
def parse_money(value: Any) -> Decimal:
    """Money: >= 0, < 10^12, at most 4 fractional digits once trailing zeros are dropped."""
    return _decimal(value, "money", MONEY_MAX_PLACES)


@_cached
def parse_rate(value: Any) -> Decimal:
    """A rate: the money forms with any number of fractional digits."""
    return _decimal(value, "rate", None)


class Instant(datetime):
    """A timestamp finer than a microsecond: ``beyond`` holds its fractional digits past the sixth."""

    beyond: str

    @classmethod
    def finer(cls, parsed: datetime, beyond: str) -> Instant:
        instant = cls(
            parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second,
            parsed.microsecond, tzinfo=parsed.tzinfo,
        )  # fmt: skip
        instant.beyond = beyond
        return instant


@_cached
def parse_timestamp(value: Any) -> datetime:
    """RFC 3339 with an explicit offset (``Z`` or ``±HH:MM``)."""
    match = _RFC3339.fullmatch(value) if type(value) is str else None
    if match is None:
        raise ValueError("timestamp must be RFC 3339 with an offset, e.g. 2026-11-01T08:00:00+08:00")
    hour, minute, second, fraction, offset_hours, offset_minutes = match.groups()
    if hour > "23" or minute > "59" or second > "59":
        raise ValueError("timestamp has an hour over 23 or a minute or second over 59")
    if offset_hours is not None and (offset_hours > "23" or offset_minutes > "59"):
        raise ValueError("timestamp offset must be ±HH:MM with HH <= 23 and MM <= 59")
    if value[-1] == "z":  # RFC 3339 allows a lower-case z; fromisoformat does not
        value = value[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(value)
        beyond = fraction[7:].rstrip("0") if fraction else ""  # fraction is ".ddd…": digits past the 6th
        if beyond:
            parsed = Instant.finer(parsed, beyond)
        if parsed.year <= 1 or parsed.year >= 9999:
            # an instant whose UTC or local date leaves years 1-9999 cannot be dated
            parsed.astimezone(UTC).astimezone(timezone(timedelta(hours=14))).astimezone(timezone(timedelta(hours=-14)))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"timestamp is not a valid instant: {exc}") from None
    return parsed


@_cached
def parse_date(value: Any) -> date:
    """A calendar date ``YYYY-MM-DD``."""
    if type(value) is not str or not _DATE.fullmatch(value):
        raise ValueError("date must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"invalid date: {exc}") from None


@_cached
def parse_currency(value: Any) -> str:
    """ISO 4217: three capital letters."""
    if type(value) is not str or not _CURRENCY.fullmatch(value):
        raise ValueError("currency must be three capital letters (ISO 4217), e.g. CNY")
    return value


def parse_schema_version(value: Any) -> int:
    """A JSON integer of any size (booleans are not integers here); null means the default.

    Only registered versions mean anything (``schemas.upcast``); an integer too
    long to convert cheaply is kept as ``BEYOND_ANY_VERSION``.
    """
    if value is None:
        return 1
    if type(value) is int:
        return value
    if type(value) is JsonNumber and value.is_integer:
        return int(value.text) if len(value.text) <= 100 else BEYOND_ANY_VERSION
    raise ValueError("schema_version must be a JSON integer")


_MONEY_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        {"type": "number", "minimum": 0, "exclusiveMaximum": 1e12},
    ],
    "description": "decimal >= 0 and < 10^12, at most 4 fractional digits once trailing zeros are dropped",
}


Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
Money = Annotated[Decimal, PlainValidator(parse_money), WithJsonSchema(_MONEY_SCHEMA)]
Rate = Annotated[
    Decimal,
    PlainValidator(parse_rate),
    WithJsonSchema({**_MONEY_SCHEMA, "description": "decimal >= 0, any number of fractional digits"}),
]
Timestamp = Annotated[
    datetime,
    PlainValidator(parse_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "RFC 3339 with offset"}),
]
CalendarDate = Annotated[date, PlainValidator(parse_date), WithJsonSchema({"type": "string", "format": "date"})]
Currency = Annotated[str, PlainValidator(parse_currency), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"})]
SchemaVersion = Annotated[int, PlainValidator(parse_schema_version), WithJsonSchema({"type": "integer"})]
