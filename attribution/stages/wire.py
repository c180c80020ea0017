"""Stage records on the wire: one JSON line each, a flat array led by a one-letter tag.

Exact like the facts (attribution/stages/facts.py): ticks (10^-18 s, larger
than 64 bits) and decimals travel as text, dates as ISO text. Only records
that ``encode`` writes are read back; a line that fails to decode is a bug in
a producer of ours, reported by the caller with its origin.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from attribution.orders import PaymentRec, RefundRec
from attribution.sources import Touch
from attribution.stages import facts
from attribution.stages.records import (
    FX,
    PLAN,
    RULE,
    Answer,
    CallbackIn,
    ClockIn,
    ConfigIn,
    ConversionsIn,
    OrderResult,
    PaymentIn,
    RedirectAt,
    RedirectIn,
    RefundIn,
    SendPostback,
    SpendIn,
    StageRecord,
    TouchIn,
    UnlockIn,
)

_dates: dict[str, date] = {}


def _date(text: str) -> date:
    found = _dates.get(text)
    if found is None:
        if len(_dates) > 100_000:
            _dates.clear()
        found = _dates[text] = date.fromisoformat(text)
    return found


def _touch(t: Touch | None) -> list[Any] | None:
    return None if t is None else [str(t.ts), t.event_id, t.source_kind, t.source_id]


def _untouch(v: list[Any] | None) -> Touch | None:
    return None if v is None else Touch(int(v[0]), v[1], v[2], v[3])


def _payment(p: PaymentRec) -> list[Any]:
    return [str(p.ts), p.event_id, p.user_id, str(p.amount), p.currency, p.date.isoformat(), p.origin]


def _unpayment(v: list[Any]) -> PaymentRec:
    return PaymentRec(int(v[0]), v[1], v[2], Decimal(v[3]), v[4], _date(v[5]), v[6], b"")


def _refund(r: RefundRec) -> list[Any]:
    return [str(r.ts), r.event_id, str(r.amount), r.currency, r.date.isoformat(), r.origin]


def _unrefund(v: list[Any]) -> RefundRec:
    return RefundRec(int(v[0]), v[1], Decimal(v[2]), v[3], _date(v[4]), v[5], b"")


def _values(kind: str, values: tuple[Any, ...]) -> list[Any]:
    if kind == FX:
        return [values[0], values[1].isoformat(), str(values[2])]
    if kind == PLAN:
        return [values[0], values[1], str(values[2])]
    if kind == RULE:
        return [list(values[0]), None if values[1] is None else str(values[1]), str(values[2])]
    return list(values)  # campaign: platform, drama_id, buyer_id, name (text or null)


def _unvalues(kind: str, v: list[Any]) -> tuple[Any, ...]:
    if kind == FX:
        return (v[0], _date(v[1]), Decimal(v[2]))
    if kind == PLAN:
        return (v[0], v[1], Decimal(v[2]))
    if kind == RULE:
        return (tuple(v[0]), None if v[1] is None else Decimal(v[1]), Decimal(v[2]))
    return tuple(v)


def encode(record: StageRecord) -> bytes:
    """One JSON line (no LF) for ``record``."""
    r = record
    if isinstance(r, TouchIn):
        out: list[Any] = [
            "t",
            r.key,
            str(r.ts),
            r.event_id,
            r.impression,
            r.source_kind,
            r.source_id,
            r.origin,
            r.counts,
        ]
    elif isinstance(r, Answer):
        out = ["A", r.user_id, r.redirect_id, r.slot, r.version, _touch(r.click), _touch(r.impression)]
    elif isinstance(r, RedirectAt):
        out = ["a", r.key, str(r.ts), r.event_id, r.user_id]
    elif isinstance(r, RedirectIn):
        out = ["r", r.user_id, str(r.ts), r.event_id, r.click_id, r.device_id, r.origin]
    elif isinstance(r, UnlockIn):
        out = ["u", r.user_id, str(r.ts), r.event_id, str(r.revenue), r.currency, r.date.isoformat(), r.origin]
    elif isinstance(r, OrderResult):
        counted = None if r.counted is None else _payment(r.counted)
        rate = None if r.rate is None else str(r.rate)
        out = ["O", r.user_id, r.order_id, r.version, counted, rate, [_refund(x) for x in r.refunds]]
    elif isinstance(r, PaymentIn):
        out = ["p", r.order_id, *_payment(r.rec)]
    elif isinstance(r, RefundIn):
        out = ["f", r.order_id, *_refund(r.rec)]
    elif isinstance(r, SpendIn):
        out = [
            "s", r.campaign_id, str(r.ts), r.event_id, r.period_us, r.period_date.isoformat(), str(r.amount),
            r.currency, r.origin,
        ]  # fmt: skip
    elif isinstance(r, ConfigIn):
        out = ["c", r.kind, r.key, str(r.ts), r.event_id, _values(r.kind, r.values), r.origin]
    elif isinstance(r, CallbackIn):
        out = ["k", r.click_event_id, str(r.ts), r.campaign_id, r.callback, r.origin]
    elif isinstance(r, ConversionsIn):
        payments = [[o, e, t, str(v)] for o, e, t, v in r.payments]
        out = ["v", r.click_event_id, r.user_id, r.version, r.campaign_id, str(r.acquired_ts), payments]
    elif isinstance(r, SendPostback):  # the decision as its fact line, version 0: the sender needs no version
        out = ["P", orjson.Fragment(facts.encode(facts.Fact("postback", 0, r.decision)))]
    else:
        out = ["w", str(r.ts)]
    return facts.json_line(out)


def decode(line: bytes) -> StageRecord:
    """The record ``encode`` wrote; ValueError (or KeyError, IndexError) on anything else."""
    v = orjson.loads(line)
    tag = v[0]
    if tag == "t":
        return TouchIn(v[1], int(v[2]), v[3], v[4], v[5], v[6], v[7], v[8])
    if tag == "A":
        return Answer(v[1], v[2], v[3], v[4], _untouch(v[5]), _untouch(v[6]))
    if tag == "a":
        return RedirectAt(v[1], int(v[2]), v[3], v[4])
    if tag == "r":
        return RedirectIn(v[1], int(v[2]), v[3], v[4], v[5], v[6])
    if tag == "u":
        return UnlockIn(v[1], int(v[2]), v[3], Decimal(v[4]), v[5], _date(v[6]), v[7])
    if tag == "O":
        counted = None if v[4] is None else _unpayment(v[4])
        rate = None if v[5] is None else Decimal(v[5])
        return OrderResult(v[1], v[2], v[3], counted, rate, tuple(_unrefund(x) for x in v[6]))
    if tag == "p":
        return PaymentIn(v[1], _unpayment(v[2:]))
    if tag == "f":
        return RefundIn(v[1], _unrefund(v[2:]))
    if tag == "s":
        return SpendIn(v[1], int(v[2]), v[3], v[4], _date(v[5]), Decimal(v[6]), v[7], v[8])
    if tag == "c":
        return ConfigIn(v[1], v[2], int(v[3]), v[4], _unvalues(v[1], v[5]), v[6])
    if tag == "k":
        return CallbackIn(v[1], int(v[2]), v[3], v[4], v[5])
    if tag == "v":
        payments = tuple((o, e, t, Decimal(x)) for o, e, t, x in v[6])
        return ConversionsIn(v[1], v[2], v[3], v[4], int(v[5]), payments)
    if tag == "w":
        return ClockIn(int(v[1]))
    if tag == "P":
        fact = facts.decode(orjson.dumps(v[1]))
        if fact.kind != "postback":
            raise ValueError(f"a postback to send carries a postback decision, not a {fact.kind}")
        return SendPostback(fact.row)
    raise ValueError(f"unknown stage record tag {tag!r}")
