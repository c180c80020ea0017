"""Outputs to insert blocks: pure, so it is tested without a server.

Each block is column-oriented and uses cheap wire types: decimals travel as
plain strings (the server converts them to Decimal), dates as day numbers
(converted to Date32) and instants as DateTime64 microsecond ticks. Rows
are deduplicated by key within a block (the last one wins), so one block never
holds two versions of a key with the same version number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Context, Decimal
from typing import Any, NamedTuple

from attribution.outputs import Outputs

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Instants travel as integer microseconds in the column's own type: a plain
# Int64 would be converted by the server as *seconds*.
TS = "DateTime64(6, 'UTC')"
_SCALE = Decimal(1).scaleb(-30)
_WIDE = Context(prec=100)  # 46 integer + 30 fractional digits fit; the default 28 do not


class Block(NamedTuple):
    table: str
    columns: list[str]
    types: list[str]
    data: list[list[Any]]  # column-oriented

    def __len__(self) -> int:
        return len(self.data[0]) if self.data else 0


def dec(value: Decimal) -> str:
    """Plain decimal text (no exponent) with at most 30 fractional digits (the column's scale)."""
    text = format(value, "f")
    if len(text) > 31 and "." in text and len(text) - text.index(".") > 31:
        text = format(_WIDE.quantize(value, _SCALE), "f")
    return text


_day_cache: dict[date, int] = {}


def day(value: date) -> int:
    """Days since 1970-01-01 (the wire form of Date32)."""
    found = _day_cache.get(value)
    if found is None:
        if len(_day_cache) > 100_000:
            _day_cache.clear()
        found = _day_cache[value] = value.toordinal() - _EPOCH_ORDINAL
    return found


def _last_by_key(rows: Sequence[Any], key: Callable[[Any], Any]) -> list[Any]:
    latest: dict[Any, Any] = {}
    for row in rows:
        latest[key(row)] = row
    return list(latest.values())


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _block(table: str, spec: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> Block:
    return Block(table, [c for c, _ in spec], [t for _, t in spec], _columns(rows, len(spec)))


EVENTS = [("event_id", "String"), ("type", "String"), ("ts", TS), ("origin", "String"), ("raw", "String")]
REJECTIONS = [
    ("key", "String"), ("reason", "String"), ("detail", "String"), ("event_id", "String"), ("type", "String"),
    ("origin", "String"), ("raw", "String"), ("is_deleted", "UInt8"),
]  # fmt: skip
DUPLICATES = [
    ("key", "String"),
    ("kind", "String"),
    ("event_id", "String"),
    ("origin", "String"),
    ("is_deleted", "UInt8"),
]
USERS = [
    ("user_id", "String"), ("source_kind", "String"), ("source_id", "String"), ("touch", "String"),
    ("cohort_date", "Int32"), ("acquired", TS), ("is_deleted", "UInt8"),
]  # fmt: skip
MONEY = [
    ("event_id", "String"), ("kind", "String"), ("user_id", "String"), ("order_id", "String"), ("ts", TS),
    ("date", "Int32"), ("source_kind", "String"), ("source_id", "String"), ("cohort_date", "Int32"),
    ("currency", "String"), ("amount", "String"), ("rate", "String"), ("value", "String"), ("creator_id", "String"),
    ("commission", "String"), ("is_deleted", "UInt8"),
]  # fmt: skip
SPEND = [
    ("campaign_id", "String"), ("period_start", TS), ("date", "Int32"), ("event_id", "String"),
    ("currency", "String"), ("amount", "String"), ("rate", "String"), ("value", "String"), ("is_deleted", "UInt8"),
]  # fmt: skip
CAMPAIGNS = [
    ("campaign_id", "String"),
    ("platform", "String"),
    ("drama_id", "String"),
    ("buyer_id", "String"),
    ("name", "String"),
]
PLANS = [("plan_id", "String"), ("creator_id", "String"), ("drama_id", "String"), ("commission_rate", "String")]
FX = [("currency", "String"), ("effective_date", "Int32"), ("rate", "String")]


def blocks(out: Outputs) -> list[Block]:
    """Every non-empty insert block for one batch of outputs."""
    result = [
        _block(
            "rejections",
            REJECTIONS,
            [
                (r.key, r.reason, r.detail, r.event_id, r.type, r.origin, r.raw, 0 if r.active else 1)
                for r in _last_by_key(out.rejections, lambda r: r.key)
            ],
        ),
        _block(
            "duplicates",
            DUPLICATES,
            [
                (d.key, d.kind, d.event_id, d.origin, 0 if d.active else 1)
                for d in _last_by_key(out.duplicates, lambda d: d.key)
            ],
        ),
        _block(
            "users",
            USERS,
            [
                (
                    u.user_id,
                    u.source_kind,
                    u.source_id,
                    u.touch,
                    day(u.cohort_date),
                    u.acquired_us,
                    0 if u.active else 1,
                )
                for u in _last_by_key(out.users, lambda u: u.user_id)
            ],
        ),
        _block(
            "money",
            MONEY,
            [
                (
                    m.event_id,
                    m.kind,
                    m.user_id,
                    m.order_id,
                    m.ts_us,
                    day(m.date),
                    m.source_kind,
                    m.source_id,
                    day(m.cohort_date),
                    m.currency,
                    dec(m.amount),
                    dec(m.rate),
                    dec(m.value),
                    m.creator_id,
                    dec(m.commission),
                    0 if m.active else 1,
                )
                for m in _last_by_key(out.money, lambda m: m.event_id)
            ],
        ),
        _block(
            "spend",
            SPEND,
            [
                (
                    s.campaign_id,
                    s.period_us,
                    day(s.date),
                    s.event_id,
                    s.currency,
                    dec(s.amount),
                    dec(s.rate),
                    dec(s.value),
                    0 if s.active else 1,
                )
                for s in _last_by_key(out.spend, lambda s: (s.campaign_id, s.period_us))
            ],
        ),
        _block("campaigns", CAMPAIGNS, [tuple(c) for c in _last_by_key(out.campaigns, lambda c: c.campaign_id)]),
        _block(
            "plans",
            PLANS,
            [
                (p.plan_id, p.creator_id, p.drama_id, dec(p.commission_rate))
                for p in _last_by_key(out.plans, lambda p: p.plan_id)
            ],
        ),
        _block(
            "fx_rates",
            FX,
            [
                (f.currency, day(f.effective_date), dec(f.rate))
                for f in _last_by_key(out.fx, lambda f: (f.currency, f.effective_date))
            ],
        ),
        # the event log goes LAST: an event in the log has all its facts written, which
        # is what a restarted worker relies on; one row per event_id, straight to columns
        Block(
            "events", [c for c, _ in EVENTS], [t for _, t in EVENTS], [list(c) for c in zip(*out.events, strict=True)]
        )
        if out.events
        else Block("events", [], [], []),
    ]
    return [b for b in result if len(b)]
