"""Outputs to insert blocks: pure, so it is tested without a server.

Each block is column-oriented and uses cheap wire types: decimals travel as
plain strings (the server converts them to Decimal), dates as day numbers
(converted to Date32) and instants as DateTime64 microsecond ticks. Rows
are deduplicated by their table key within a block, so one block never holds
two rows of a key with the same version number. Engine outputs (``blocks``)
share one version per write, so the last row of a key wins; facts
(``fact_blocks``) carry their own, so the greatest version wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Context, Decimal
from typing import Any, NamedTuple

from attribution.outputs import (
    Duplicate,
    FxRow,
    MoneyFact,
    Outputs,
    PlanRow,
    PostbackDecision,
    PostbackDelivery,
    Rejection,
    SpendFact,
    UserFact,
)
from attribution.stages.facts import Fact, row_key

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
    text = str(value)  # twice as fast; the same text as "f" unless it takes an exponent (tests/unit/test_rows.py)
    if "E" in text or "e" in text:  # (lower case under a context with capitals=0)
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
POSTBACK_DECISIONS = [
    ("key", "String"), ("platform", "String"), ("campaign_id", "String"), ("click_event_id", "String"),
    ("callback", "String"), ("user_id", "String"), ("order_id", "String"), ("kind", "String"), ("amount", "String"),
    ("conversion_ts", TS), ("decided_ts", TS), ("decision", "String"), ("detail", "String"), ("is_deleted", "UInt8"),
]  # fmt: skip
POSTBACK_DELIVERIES = [
    ("key", "String"), ("status", "String"), ("attempts", "UInt32"), ("last_answer", "String"),
    ("last_attempt", TS),
]  # fmt: skip


VERSION = ("version", "UInt64")


def _deleted(active: bool) -> int:
    return 0 if active else 1


def _rejection(r: Rejection) -> tuple[Any, ...]:
    return (r.key, r.reason, r.detail, r.event_id, r.type, r.origin, r.raw, _deleted(r.active))


def _duplicate(d: Duplicate) -> tuple[Any, ...]:
    return (d.key, d.kind, d.event_id, d.origin, _deleted(d.active))


# The two row functions of every replayed event unpack their fact once (a field read by name costs as much)


def _user(u: UserFact) -> tuple[Any, ...]:
    user_id, source_kind, source_id, touch, cohort_date, acquired_us, active = u
    return (user_id, source_kind, source_id, touch, day(cohort_date), acquired_us, 0 if active else 1)


def _money(m: MoneyFact) -> tuple[Any, ...]:
    (event_id, kind, user_id, order_id, ts_us, date_, source_kind, source_id, cohort_date, currency, amount, rate,
     value, creator_id, commission, active) = m  # fmt: skip
    return (
        event_id, kind, user_id, order_id, ts_us, day(date_), source_kind, source_id, day(cohort_date), currency,
        dec(amount), dec(rate), dec(value), creator_id, dec(commission), 0 if active else 1,
    )  # fmt: skip


def _spend(s: SpendFact) -> tuple[Any, ...]:
    return (
        s.campaign_id, s.period_us, day(s.date), s.event_id, s.currency, dec(s.amount), dec(s.rate), dec(s.value),
        _deleted(s.active),
    )  # fmt: skip


def _plan(p: PlanRow) -> tuple[Any, ...]:
    return (p.plan_id, p.creator_id, p.drama_id, dec(p.commission_rate))


def _fx(f: FxRow) -> tuple[Any, ...]:
    return (f.currency, day(f.effective_date), dec(f.rate))


def _postback(p: PostbackDecision) -> tuple[Any, ...]:
    return (
        p.key, p.platform, p.campaign_id, p.click_event_id, p.callback, p.user_id, p.order_id, p.kind, dec(p.amount),
        p.conversion_us, p.decided_us, p.decision, p.detail, _deleted(p.active),
    )  # fmt: skip


def _delivery(d: PostbackDelivery) -> tuple[Any, ...]:
    return (d.key, d.status, d.attempts, d.last_answer, d.last_attempt_us)


class Table(NamedTuple):
    """Where rows of one fact kind go: the table, its columns, the row's key and its mapping to columns."""

    name: str
    spec: list[tuple[str, str]]
    outputs: str  # the ``Outputs`` list holding them; "" for facts only stages make (the engine never does)
    key: Callable[[Any], Any]
    row: Callable[[Any], tuple[Any, ...]] | None  # None: the row's fields are the columns


# fact kind -> table, in write order. The event log goes LAST: an event in the log has
# all its facts written, which is what a worker rebuilding from the log relies on.
TABLES: dict[str, Table] = {
    "rejection": Table("rejections", REJECTIONS, "rejections", row_key("rejection"), _rejection),
    "duplicate": Table("duplicates", DUPLICATES, "duplicates", row_key("duplicate"), _duplicate),
    "user": Table("users", USERS, "users", row_key("user"), _user),
    "money": Table("money", MONEY, "money", row_key("money"), _money),
    "spend": Table("spend", SPEND, "spend", row_key("spend"), _spend),
    "campaign": Table("campaigns", CAMPAIGNS, "campaigns", row_key("campaign"), tuple),
    "plan": Table("plans", PLANS, "plans", row_key("plan"), _plan),
    "fx": Table("fx_rates", FX, "fx", row_key("fx"), _fx),
    "postback": Table("postback_decisions", POSTBACK_DECISIONS, "", row_key("postback"), _postback),
    "delivery": Table("postback_deliveries", POSTBACK_DELIVERIES, "", row_key("delivery"), _delivery),
    "event": Table("events", EVENTS, "events", row_key("event"), None),
}


def _last_by_key(rows: Sequence[Any], key: Callable[[Any], Any]) -> list[Any]:
    latest: dict[Any, Any] = {}
    for row in rows:
        latest[key(row)] = row
    return list(latest.values())


def blocks(out: Outputs, version: int | None = None) -> list[Block]:
    """Every non-empty insert block for one batch of outputs, the last row per key.

    With ``version``, each block ends with a ``version`` column holding it.
    """
    result = []
    for table in TABLES.values():
        rows = getattr(out, table.outputs) if table.outputs else ()
        if not rows:
            continue
        if table.row is None:  # the event log: one row per event_id already, straight to columns
            data = [list(col) for col in zip(*rows, strict=True)]
        else:
            data = _columns([table.row(r) for r in _last_by_key(rows, table.key)], len(table.spec))
        block = Block(table.name, [c for c, _ in table.spec], [t for _, t in table.spec], data)
        result.append(block if version is None else _versioned(block, [version] * len(block)))
    return result


def fact_blocks(facts: Iterable[Fact]) -> list[Block]:
    """Insert blocks for facts of any kinds, each row with its own version column.

    Per key within a block only the fact with the greatest version is kept (of
    equal versions, the later one), as the table would keep it: a block never
    holds two rows of a key with one version, whose winner ClickHouse leaves open.
    """
    held: dict[str, dict[Any, Fact]] = {}
    for fact in facts:
        table = TABLES.get(fact.kind)
        if table is None:
            raise ValueError(f"unknown fact kind {fact.kind!r}")
        by_key = held.setdefault(fact.kind, {})
        key = table.key(fact.row)
        kept = by_key.get(key)
        if kept is None or fact.version >= kept.version:
            by_key[key] = fact
    result = []
    for kind, table in TABLES.items():
        kept_facts = list(held.get(kind, {}).values())
        if not kept_facts:
            continue
        to_row = table.row or tuple
        data = _columns([to_row(f.row) for f in kept_facts], len(table.spec))
        block = Block(table.name, [c for c, _ in table.spec], [t for _, t in table.spec], data)
        result.append(_versioned(block, [f.version for f in kept_facts]))
    return result


def _versioned(block: Block, versions: list[int]) -> Block:
    return Block(block.table, [*block.columns, VERSION[0]], [*block.types, VERSION[1]], [*block.data, versions])
