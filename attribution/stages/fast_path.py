"""The router's fast path: well-formed lines of the high-volume event types, decided without pydantic.

``fast_decode(raw)`` parses a line with msgspec into one typed struct per
event type (impression, click, redirect, payment, ad unlock, refund) and
checks its fields exactly as the pydantic models do: strict strings of 1 to
128 characters, literals, null as absent, and the timestamp, money and
currency parsers of ``schemas.fields`` themselves. It returns ``(type,
event_id, ts in ticks, fields)`` with the fields in the order of the router's
builder for that type, or ``None`` for anything it does not plainly accept:
another type, a ``schema_version``, money as a JSON fraction, a missing or
ill-typed field, a line nested too deep, and any line msgspec or orjson (the
slow path's parser) would not read (msgspec skips the fields no struct
names without checking their UTF-8: the line is checked first). Those lines
go to ``schemas.decode``, the authority on every rejection and its reason, so
the fast path can only ever be a shortcut to the same event:
tests/unit/test_fast_path.py checks that on generated, mutated and hostile
lines.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct

from attribution.clock import to_ticks
from schemas.fields import parse_currency, parse_money, parse_timestamp
from schemas.jsontext import MAX_DEPTH

Fields = tuple[Any, ...]
Found = tuple[str, str, int, Fields]

_ID_MAX = 128
_CALLBACK_MAX = 4096


_TICKS_PER_SECOND = 1_000_000_000_000_000_000
_SECONDS = {f"{n:02d}": n for n in range(60)}
_MINUTE_LIMIT = 1 << 16
_minutes: dict[str, int] = {}  # ticks at second 0 by a whole-second timestamp's text less its seconds

_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAY_LIMIT = 1 << 14
_days: dict[str, int] = {}  # days since the epoch, by the date text of a timestamp
# The common shape of an RFC 3339 timestamp: upper-case T and Z, at most 18 fractional digits.
_SHAPE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,18}))?(?:Z|([+-][0-9]{2}):([0-9]{2}))"
)


def plain_ticks(text: str) -> int | None:
    """``_shaped_ticks(text)``: the same instant, or None, for any text; whole seconds by the minute they are in.

    A timestamp without a fraction is its minute (its first 16 characters and its offset: whatever it says
    but the seconds) and two digits of seconds. Texts that differ only in those digits are valid together
    or not at all, ``00`` to ``59`` being valid in every minute, so a minute is judged once (by
    ``_shaped_ticks``) and each of its seconds costs a look-up: a shuffled history of a few days revisits
    a few thousand minutes, where it revisits its seconds only a few times each.
    """
    if (len(text) == 20 or len(text) == 25) and text[16] == ":":
        second = _SECONDS.get(text[17:19])
        if second is not None:
            minute = text[:16] + text[19:]
            base = _minutes.get(minute)
            if base is None:
                base = _shaped_ticks(text)
                if base is None:
                    return None
                base -= second * _TICKS_PER_SECOND
                if len(_minutes) >= _MINUTE_LIMIT:
                    _minutes.clear()
                _minutes[minute] = base
            return base + second * _TICKS_PER_SECOND
    return _shaped_ticks(text)


def _shaped_ticks(text: str) -> int | None:
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
    ticks = seconds * _TICKS_PER_SECOND
    return ticks + int(fraction.ljust(18, "0")) if fraction else ticks


# One msgspec Struct per fast type, tagged by ``type``: msgspec parses the line, checks each field's JSON
# type, its length (characters, as pydantic counts) and the literals, and skips the other fields (which
# it still parses: malformed JSON anywhere fails). Null is absent, as the models take it; ``schema_version``
# is declared only to refuse lines that carry one (the slow path upcasts). Money is a JSON string or a 64-bit
# integer (a fraction needs its exact text: the slow path); its value, the currency and the timestamp are
# then checked by the models' own parsers.
_Id = Annotated[str, Meta(min_length=1, max_length=_ID_MAX)]
_Callback = Annotated[str, Meta(min_length=1, max_length=_CALLBACK_MAX)]
_Money = str | int


class _Fast(Struct, tag_field="type", kw_only=True):
    event_id: _Id
    ts: str
    schema_version: Any = UNSET


class _Impression(_Fast, tag="impression"):
    campaign_id: _Id
    device_id: _Id


class _Click(_Fast, tag="click"):
    click_id: _Id
    device_id: _Id
    campaign_id: _Id | None = None
    plan_id: _Id | None = None
    callback: _Callback | None = None


class _Redirect(_Fast, tag="redirect"):
    app_id: _Id
    host: Literal["wechat", "douyin", "app"]
    user_id: _Id
    click_id: _Id | None = None
    device_id: _Id | None = None


class _Payment(_Fast, tag="payment"):
    drama_id: _Id
    kind: Literal["unlock", "recharge", "subscription"]
    order_id: _Id
    user_id: _Id
    amount: _Money
    currency: str


class _Unlock(_Fast, tag="ad_unlock"):
    drama_id: _Id
    user_id: _Id
    revenue: _Money
    currency: str


class _Refund(_Fast, tag="refund"):
    order_id: _Id
    amount: _Money
    currency: str


_decode = msgspec.json.Decoder(_Impression | _Click | _Redirect | _Payment | _Unlock | _Refund).decode


def _fields(found: _Fast) -> tuple[str, Fields]:
    """The event's type and its fields in its router builder's order (ValueError: the models' parsers refuse it)."""
    if isinstance(found, _Impression):  # by frequency
        return "impression", (found.campaign_id, found.device_id)
    if isinstance(found, _Unlock):
        return "ad_unlock", (found.user_id, parse_money(found.revenue), parse_currency(found.currency))
    if isinstance(found, _Redirect):
        return "redirect", (found.user_id, found.click_id, found.device_id)
    if isinstance(found, _Click):
        if (found.campaign_id is None) == (found.plan_id is None):
            raise ValueError("a click names a campaign or a plan")
        return "click", (found.click_id, found.device_id, found.campaign_id, found.plan_id, found.callback)
    if isinstance(found, _Payment):
        amount = parse_money(found.amount)
        return "payment", (found.order_id, found.user_id, amount, parse_currency(found.currency))
    assert isinstance(found, _Refund)
    return "refund", (found.order_id, parse_money(found.amount), parse_currency(found.currency))


def fast_decode(raw: bytes) -> Found | None:
    """``(type, event_id, ts ticks, fields)`` for a plainly valid line of a fast type, else None. Never raises."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        return None  # possibly too deep: the slow path counts properly
    try:
        if not raw.isascii():
            raw.decode("utf-8")  # msgspec does not check the bytes of the fields it skips; orjson (the slow path) does
        found = _decode(raw)
        if found.schema_version is not UNSET:
            return None
        kind, fields = _fields(found)
        ts = plain_ticks(found.ts)
        if ts is None:
            ts = to_ticks(parse_timestamp(found.ts))  # ValueError (refused) for anything but a valid timestamp text
    except Exception:  # noqa: BLE001 - refused (msgspec's errors, ValueError) or not the fast path's call: the slow path judges
        return None
    return (kind, found.event_id, ts, fields)
