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

MONEY_LIMIT = Decimal(10) ** 12
MONEY_MAX_PLACES = 4
_CACHE_LIMIT = 65_536
T = TypeVar("T")

_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def _decimal(value: Any, what: str) -> Decimal:
    """A non-negative exact decimal from a decimal string or a JSON number.

    JSON numbers arrive as ``int`` or, when the line had a fraction, as the
    exact ``Decimal`` the decoder re-parsed (never as a binary float).
    """
    if type(value) is str:
        if not _DECIMAL_TEXT.fullmatch(value):
            raise ValueError(f"{what} must be plain digits with one optional point, got {value[:40]!r}")
        return Decimal(value)
    if type(value) is int:
        if value < 0:
            raise ValueError(f"{what} must not be negative")
        return Decimal(value)
    if type(value) is Decimal:
        if not value.is_finite():
            raise ValueError(f"{what} must be finite")
        if value < 0:
            raise ValueError(f"{what} must not be negative")
        return value
    raise ValueError(f"{what} must be a decimal string or a JSON number, got {type(value).__name__}")


def _fraction_digits(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _cached(parse: Callable[[Any], T]) -> Callable[[Any], T]:
    """Memoise a parser on string inputs: timestamps, amounts and currencies repeat a lot.

    Errors are not cached (they raise), and the cache is simply dropped when it
    grows past a bound, which keeps memory flat on endless streams.
    """
    cache: dict[str, T] = {}

    def parse_cached(value: Any) -> T:
        if type(value) is str:
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
    amount = _decimal(value, "money")
    if amount >= MONEY_LIMIT:
        raise ValueError("money must be below 10^12")
    if amount and _fraction_digits(amount) > MONEY_MAX_PLACES:
        raise ValueError("money has more than 4 fractional digits")
    return amount


@_cached
def parse_rate(value: Any) -> Decimal:
    """A rate: the money forms with any number of fractional digits."""
    rate = _decimal(value, "rate")
    if rate >= MONEY_LIMIT:
        raise ValueError("rate must be below 10^12")
    return rate


@_cached
def parse_timestamp(value: Any) -> datetime:
    """RFC 3339 with an explicit offset (``Z`` or ``±HH:MM``)."""
    if type(value) is not str or not _RFC3339.fullmatch(value):
        raise ValueError("timestamp must be RFC 3339 with an offset, e.g. 2026-11-01T08:00:00+08:00")
    if value[-1] == "z":  # RFC 3339 allows a lower-case z; fromisoformat does not
        value = value[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(value)
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
    """A JSON integer (booleans are not integers here); null means the default."""
    if value is None:
        return 1
    if type(value) is not int:
        raise ValueError("schema_version must be a JSON integer")
    return value


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
