"""The router's fast path: well-formed lines of the high-volume event types, decided without pydantic.

``fast_decode(raw)`` parses with orjson (the same parser ``schemas.decode``
starts with, so JSON itself is read identically) and checks the fields of an
impression, click, redirect, payment, ad unlock or refund exactly as the
pydantic models do: strict strings of 1 to 128 characters, literals, null as
absent, and the timestamp, money and currency parsers of ``schemas.fields``
themselves. It returns ``(type, event_id, ts in ticks, fields)`` with the
fields in the order of the router's builder for that type, or ``None`` for
anything it does not plainly accept: another type, a ``schema_version``, a
number orjson hands over as a binary float, a missing or ill-typed field, a
line nested too deep. Those lines go to ``schemas.decode``, the authority on
every rejection and its reason, so the fast path can only ever be a shortcut
to the same event: tests/unit/test_fast_path.py checks that on generated,
mutated and hostile lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from attribution.clock import to_ticks
from schemas.fields import parse_currency, parse_money, parse_timestamp
from schemas.jsontext import MAX_DEPTH

Fields = tuple[Any, ...]
Found = tuple[str, str, int, Fields]

_HOSTS = frozenset(("wechat", "douyin", "app"))
_PAYMENT_KINDS = frozenset(("unlock", "recharge", "subscription"))
_ID_MAX = 128
_CALLBACK_MAX = 4096
# Timestamps repeat (a day has 86,400 seconds, a shuffled history revisits them all): ticks by text,
# dropped whole when full, so it holds a quarter of a million timestamps at most.
_TICKS_LIMIT = 1 << 18
_ticks: dict[str, int] = {}


_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAY_LIMIT = 1 << 14
_days: dict[str, int] = {}  # days since the epoch, by the date text of a timestamp
# The common shape of an RFC 3339 timestamp: upper-case T and Z, at most 18 fractional digits.
_SHAPE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,18}))?(?:Z|([+-][0-9]{2}):([0-9]{2}))"
)


def plain_ticks(text: str) -> int | None:
    """Ticks of a timestamp of the common shape in years 2-9998, in integers; None for any other text.

    The same instant ``to_ticks(parse_timestamp(text))`` gives (it keeps the first six fractional
    digits in the datetime and the next twelve as ticks, so ticks are the first 18 digits), without
    building a datetime; whatever this does not take, ``parse_timestamp`` judges.
    """
    match = _SHAPE.fullmatch(text)
    if match is None:
        return None
    day, hour, minute, second, fraction, offset_hours, offset_minutes = match.groups()
    if hour > "23" or minute > "59" or second > "59":
        return None
    days = _days.get(day)
    if days is None:
        if not "0001" < day[:4] < "9999":
            return None
        try:
            days = date.fromisoformat(day).toordinal() - _EPOCH_DAY
        except ValueError:
            return None
        if len(_days) >= _DAY_LIMIT:
            _days.clear()
        _days[day] = days
    seconds = days * 86_400 + int(hour) * 3_600 + int(minute) * 60 + int(second)
    if offset_hours is not None:
        if offset_hours[1:] > "23" or offset_minutes > "59":
            return None
        offset = int(offset_hours[1:]) * 3_600 + int(offset_minutes) * 60
        seconds = seconds - offset if offset_hours[0] == "+" else seconds + offset
    ticks = seconds * 1_000_000_000_000_000_000
    return ticks + int(fraction.ljust(18, "0")) if fraction else ticks


class _Refused(Exception):
    """The fast path does not decide this line (``schemas.decode`` will)."""


def _id(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if type(value) is not str or not 0 < len(value) <= _ID_MAX:
        raise _Refused
    return value


def _optional_id(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if type(value) is not str or not 0 < len(value) <= _ID_MAX:
        raise _Refused
    return value


def _money(data: dict[str, Any], name: str) -> Decimal:
    value = data.get(name)
    if type(value) is not str and type(value) is not int:  # a float needs its exact text: the slow path
        raise _Refused
    return parse_money(value)  # ValueError: refused


def _currency(data: dict[str, Any]) -> str:
    return parse_currency(data.get("currency"))


def _impression(data: dict[str, Any]) -> Fields:
    # ``_id`` inline: the most frequent type
    campaign_id, device_id = data.get("campaign_id"), data.get("device_id")
    if (
        type(campaign_id) is str
        and type(device_id) is str
        and 0 < len(campaign_id) <= _ID_MAX
        and 0 < len(device_id) <= _ID_MAX
    ):
        return (campaign_id, device_id)
    raise _Refused


def _click(data: dict[str, Any]) -> Fields:
    campaign_id, plan_id = _optional_id(data, "campaign_id"), _optional_id(data, "plan_id")
    if (campaign_id is None) == (plan_id is None):
        raise _Refused
    callback = data.get("callback")
    if callback is not None and (type(callback) is not str or not 0 < len(callback) <= _CALLBACK_MAX):
        raise _Refused
    return (_id(data, "click_id"), _id(data, "device_id"), campaign_id, plan_id, callback)


def _redirect(data: dict[str, Any]) -> Fields:
    _id(data, "app_id")
    host = data.get("host")
    if type(host) is not str or host not in _HOSTS:
        raise _Refused
    return (_id(data, "user_id"), _optional_id(data, "click_id"), _optional_id(data, "device_id"))


def _payment(data: dict[str, Any]) -> Fields:
    _id(data, "drama_id")
    kind = data.get("kind")
    if type(kind) is not str or kind not in _PAYMENT_KINDS:
        raise _Refused
    return (_id(data, "order_id"), _id(data, "user_id"), _money(data, "amount"), _currency(data))


def _unlock(data: dict[str, Any]) -> Fields:
    drama_id, user_id = data.get("drama_id"), data.get("user_id")  # ``_id`` inline: the second most frequent type
    if type(drama_id) is str and type(user_id) is str and 0 < len(drama_id) <= _ID_MAX and 0 < len(user_id) <= _ID_MAX:
        return (user_id, _money(data, "revenue"), _currency(data))
    raise _Refused


def _refund(data: dict[str, Any]) -> Fields:
    return (_id(data, "order_id"), _money(data, "amount"), _currency(data))


_TYPES: dict[str, Callable[[dict[str, Any]], Fields]] = {
    "impression": _impression,
    "click": _click,
    "redirect": _redirect,
    "payment": _payment,
    "ad_unlock": _unlock,
    "refund": _refund,
}


def fast_decode(raw: bytes) -> Found | None:
    """``(type, event_id, ts ticks, fields)`` for a plainly valid line of a fast type, else None. Never raises."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        return None  # possibly too deep: the slow path counts properly
    try:
        data = orjson.loads(raw)
        if type(data) is not dict or "schema_version" in data:
            return None
        kind, text = data.get("type"), data.get("ts")
        if type(kind) is not str or type(text) is not str or (fields := _TYPES.get(kind)) is None:
            return None
        ts = _ticks.get(text)
        if ts is None:
            ts = plain_ticks(text)
            if ts is None:
                ts = to_ticks(parse_timestamp(text))  # ValueError (refused) for anything but a valid timestamp text
            if len(_ticks) >= _TICKS_LIMIT:
                _ticks.clear()
            _ticks[text] = ts
        event_id = data.get("event_id")
        if type(event_id) is not str or not 0 < len(event_id) <= _ID_MAX:
            return None
        found = (kind, event_id, ts, fields(data))
    except Exception:  # noqa: BLE001 - refused (ValueError, _Refused) or not the fast path's call: the slow path judges
        return None
    return found
