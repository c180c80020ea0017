"""Creator statements in ClickHouse: read what closing needs, write what it drafts, read statements back.

The rules (periods, lines, adjustments) are in ``attribution/settlement.py``;
this module only runs SQL and maps rows. The three tables of migration 0006
are insert-only and are not derived tables: replay and reattribute never
touch them. A statement exists once its header row is written, and the header
is written last, after its lines and orders (a close that fails half way
leaves rows no reader looks at).

Closing the same creator and period twice is refused: a statement never
changes, and what arrived since shows on the next period's statement.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from attribution.clock import to_micros
from attribution.errors import ConfigError
from attribution.policy import Policy
from attribution.settlement import (
    Draft,
    Figures,
    Issued,
    Money,
    Period,
    PlanInfo,
    Refund,
    Refused,
    check_closable,
    draft_statement,
    groups_to_settle,
    parse_period,
)
from sinks.connection import translate
from sinks.reports import as_of_us, commission_rows
from sinks.rows import TS, day, dec
from sinks.sql import query_dicts, where
from sinks.writer import load_settings

STATEMENT_TABLES = ("statements", "statement_lines", "statement_orders")
_D = "Decimal(76, 30)"
HEADER = [
    ("statement_id", "String"), ("creator_id", "String"), ("cycle", "String"), ("period", "String"),
    ("period_start", "Int32"), ("period_end", "Int32"), ("currency", "String"), ("tz", "String"),
    ("as_of", TS), ("closed_at", TS), ("forced", "UInt8"), ("gross", "String"), ("refunds", "String"),
    ("net", "String"), ("commission", "String"), ("lines", "UInt32"), ("orders", "UInt32"),
]  # fmt: skip
LINE = [
    ("statement_id", "String"), ("line_no", "UInt32"), ("creator_id", "String"), ("kind", "String"),
    ("period", "String"), ("period_start", "Int32"), ("period_end", "Int32"), ("plan_id", "String"),
    ("drama_id", "String"), ("commission_rate", "Nullable(String)"), ("gross", "String"), ("refunds", "String"),
    ("net", "String"), ("commission", "String"),
]  # fmt: skip
ORDER = [
    ("statement_id", "String"), ("line_no", "UInt32"), ("creator_id", "String"), ("period", "String"),
    ("plan_id", "String"), ("order_id", "String"), ("paid_at", f"Nullable({TS})"), ("drama_id", "String"),
    ("commission_rate", "Nullable(String)"), ("gross", "String"), ("refunds", "String"), ("net", "String"),
    ("commission", "String"), ("refund_ids", "Array(String)"), ("refund_times", f"Array({TS})"),
    ("refund_amounts", "Array(String)"),
]  # fmt: skip
FIGURES = ("gross", "refunds", "net", "commission")


@dataclass
class Closed:
    """What one ``close`` did: the statements written, the creators skipped and why."""

    period: Period
    as_of_us: int | None
    written: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- row mapping (pure)


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def _figures(f: Figures) -> tuple[str, str, str, str]:
    return dec(f.gross), dec(f.refunds), dec(f.net), dec(f.commission)


def draft_rows(
    draft: Draft, statement_id: str, currency: str, tz: str, as_of_us: int, closed_at_us: int, forced: bool
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the three statement tables for ``draft``."""
    lines, orders = [], []
    for no, line in enumerate(draft.lines, start=1):
        p = line.period
        lines.append(
            (statement_id, no, draft.creator_id, line.kind, p.name, day(p.start), day(p.end), line.plan_id,
             line.drama_id, _rate(line.rate), *_figures(line.figures))
        )  # fmt: skip
        for o in line.orders:
            orders.append(
                (statement_id, no, draft.creator_id, p.name, line.plan_id, o.order_id, o.paid_at_us, o.drama_id,
                 _rate(line.rate), *_figures(o.figures), [r.event_id for r in o.refunds],
                 [r.ts_us for r in o.refunds], [dec(r.amount) for r in o.refunds])
            )  # fmt: skip
    p = draft.period
    header = (
        statement_id, draft.creator_id, p.cycle, p.name, day(p.start), day(p.end), currency, tz, as_of_us,
        closed_at_us, int(forced), *_figures(draft.figures), len(lines), len(orders),
    )  # fmt: skip
    return {"statement_lines": lines, "statement_orders": orders, "statements": [header]}


def _issued(row: dict[str, Any]) -> Issued:
    refunds = tuple(
        Refund(eid, int(ts), Decimal(amount))
        for eid, ts, amount in zip(row["refund_ids"], row["refund_times"], row["refund_amounts"], strict=True)
    )
    figures = Figures(*(Decimal(row[n]) for n in FIGURES))
    paid = None if row["paid_at"] is None else int(row["paid_at"])
    return Issued(row["period"], row["plan_id"], row["order_id"], paid, row["drama_id"], figures, refunds)


def _money(row: dict[str, Any], plans: dict[str, PlanInfo]) -> Money:
    info = plans.get(row["plan_id"])
    drama = row["drama_id"] or (info.drama_id if info else "")
    paid = int(row["paid_at"]) if row["payment_id"] else None
    return Money(
        row["plan_id"], row["order_id"], row["event_id"], row["kind"], int(row["ts"]), row["date"],
        Decimal(row["value"]), Decimal(row["commission"]), paid, drama,
    )  # fmt: skip


# --------------------------------------------------------------------------- reads


def _q(client: Client, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return query_dicts(client, sql, params or {}, "statement query")


def _plans(client: Client, db: str) -> dict[str, PlanInfo]:
    rows = _q(client, f"SELECT plan_id, drama_id, commission_rate FROM {db}.plans FINAL")
    return {r["plan_id"]: PlanInfo(r["drama_id"], Decimal(r["commission_rate"])) for r in rows}


def _valid(db: str) -> str:
    """Statement ids with a header: the statements that exist."""
    return f"(SELECT statement_id FROM {db}.statements)"


def _issued_totals(client: Client, db: str, creator: str | None) -> dict[str, dict[tuple[str, str], Figures]]:
    clause, params = where(("creator_id = {creator:String}", "creator", creator))
    rows = _q(
        client,
        f"SELECT creator_id, period, plan_id, sum(gross) AS gross, sum(refunds) AS refunds, sum(net) AS net, "
        f"sum(commission) AS commission FROM {db}.statement_lines{clause or ' WHERE 1'} "
        f"AND statement_id IN {_valid(db)} GROUP BY creator_id, period, plan_id",
        params,
    )
    out: dict[str, dict[tuple[str, str], Figures]] = defaultdict(dict)
    for r in rows:
        out[r["creator_id"]][(r["period"], r["plan_id"])] = Figures(*(Decimal(r[n]) for n in FIGURES))
    return out


def _current_money(
    client: Client, db: str, creator: str, plans: Sequence[str], lo: date, hi: date, info: dict[str, PlanInfo]
) -> list[Money]:
    """The creator's plan money dated ``lo``..``hi`` with each order's payment time and drama."""
    sql = f"""
        WITH sel AS (
            SELECT event_id, kind, order_id, source_id AS plan_id, ts, date, value, commission
            FROM {db}.money FINAL
            WHERE source_kind = 'plan' AND kind IN ('payment', 'refund') AND creator_id = {{creator:String}}
              AND date >= {{lo:Date32}} AND date <= {{hi:Date32}} AND has({{plans:Array(String)}}, source_id)
        ),
        pay AS (
            SELECT order_id, argMin(event_id, ts) AS payment_id, min(ts) AS paid_at
            FROM {db}.money FINAL
            WHERE kind = 'payment' AND order_id IN (SELECT order_id FROM sel)
            GROUP BY order_id
        ),
        ev AS (
            SELECT event_id, JSONExtractString(raw, 'drama_id') AS drama_id
            FROM {db}.events FINAL WHERE event_id IN (SELECT payment_id FROM pay)
        )
        SELECT sel.plan_id AS plan_id, sel.order_id AS order_id, sel.event_id AS event_id, sel.kind AS kind,
            toUnixTimestamp64Micro(sel.ts) AS ts, sel.date AS date, sel.value AS value,
            sel.commission AS commission, pay.payment_id AS payment_id,
            toUnixTimestamp64Micro(pay.paid_at) AS paid_at, ev.drama_id AS drama_id
        FROM sel
        LEFT JOIN pay ON pay.order_id = sel.order_id
        LEFT JOIN ev ON ev.event_id = pay.payment_id
    """
    rows = _q(client, sql, {"creator": creator, "lo": lo, "hi": hi, "plans": list(plans)})
    return [_money(r, info) for r in rows]


def _issued_orders(client: Client, db: str, creator: str, periods: Sequence[str]) -> list[Issued]:
    if not periods:
        return []
    rows = _q(
        client,
        "SELECT period, plan_id, order_id, toUnixTimestamp64Micro(paid_at) AS paid_at, drama_id, gross, refunds, "
        "net, commission, refund_ids, arrayMap(t -> toUnixTimestamp64Micro(t), refund_times) AS refund_times, "
        f"refund_amounts FROM {db}.statement_orders WHERE creator_id = {{creator:String}} "
        f"AND has({{periods:Array(String)}}, period) AND statement_id IN {_valid(db)}",
        {"creator": creator, "periods": list(periods)},
    )
    return [_issued(r) for r in rows]


def _closed(client: Client, db: str, creator: str | None) -> dict[str, list[tuple[Period, str]]]:
    """Each creator's closed periods, with the currency each statement is in."""
    clause, params = where(("creator_id = {creator:String}", "creator", creator))
    rows = _q(client, f"SELECT creator_id, cycle, period, currency FROM {db}.statements{clause}", params)
    out: dict[str, list[tuple[Period, str]]] = defaultdict(list)
    for r in rows:
        out[r["creator_id"]].append((parse_period(r["period"], r["cycle"]), r["currency"]))
    return out


# --------------------------------------------------------------------------- close


def policy_of(client: Client, db: str) -> tuple[str, str]:
    """(reporting currency, time zone) the database was built with."""
    policy = Policy.from_settings(load_settings(client, db))
    return policy.currency, policy.tz


def close(client: Client, db: str, period: Period, creator: str | None = None, force: bool = False) -> Closed:
    """Close ``period`` for ``creator``, or for every creator with commission to settle.

    Refused (``ConfigError``) when the period has not ended on the data's clock
    (unless ``force``), and, for one ``creator``, when that creator cannot close
    it (already closed, a later period closed, another cycle or currency). For
    every creator, those that cannot are skipped and listed in ``skipped``.
    """
    currency, tz = policy_of(client, db)
    as_of = as_of_us(client, db)
    ends = to_micros(period.ends_at(ZoneInfo(tz)))
    if not force and (as_of is None or as_of < ends):
        seen = "no events yet" if as_of is None else f"the data's clock is at {_local(as_of, tz)}"
        raise ConfigError(
            f"{period.name} has not ended: it ends at {_local(ends, tz)} ({tz}) and {seen}; "
            "closing an open period would settle figures still arriving (use --force to close it anyway)"
        )
    result = Closed(period, as_of)
    daily: dict[str, list[tuple[str, date, Figures]]] = defaultdict(list)
    for r in commission_rows(client, db, creator, None, period.end):
        daily[r["creator_id"]].append((r["plan_id"], r["date"], Figures(*(r[n] for n in FIGURES))))
    issued = _issued_totals(client, db, creator)
    closed = _closed(client, db, creator)
    plans = _plans(client, db)
    for who in sorted({creator} if creator is not None else set(daily) | set(issued)):
        try:
            check_closable(period, [p for p, _ in closed.get(who, [])])
            other = sorted({c for _, c in closed.get(who, [])} - {currency})
            if other:
                raise Refused(f"statements are in {other[0]}, the database now reports in {currency}")
        except Refused as exc:
            if creator is not None:
                raise ConfigError(f"creator {who!r}: {exc}") from None
            result.skipped.append((who, str(exc)))
            continue
        groups = groups_to_settle(period, daily.get(who, []), issued.get(who, {}))
        if not groups:
            continue
        earliest = min(p.start for p, _ in groups)
        money = _current_money(client, db, who, sorted({plan for _, plan in groups}), earliest, period.end, plans)
        previous = _issued_orders(client, db, who, sorted({p.name for p, _ in groups if p != period}))
        draft = draft_statement(who, period, groups, money, previous, plans)
        if draft.lines:
            result.written.append(_write(client, db, draft, currency, tz, as_of or 0, force))
    return result


def _write(client: Client, db: str, draft: Draft, currency: str, tz: str, as_of: int, forced: bool) -> dict[str, Any]:
    statement_id = "st_" + uuid.uuid4().hex[:16]
    rows = draft_rows(draft, statement_id, currency, tz, as_of, time.time_ns() // 1000, forced)
    specs = {"statement_lines": LINE, "statement_orders": ORDER, "statements": HEADER}
    for table in ("statement_lines", "statement_orders", "statements"):  # the header last: it makes it exist
        if not rows[table]:
            continue
        spec = specs[table]
        try:
            client.insert(
                f"{db}.{table}",
                [list(col) for col in zip(*rows[table], strict=True)],
                column_names=[c for c, _ in spec],
                column_type_names=[t for _, t in spec],
                column_oriented=True,
            )
        except Exception as exc:
            raise translate(exc, f"insert into {db}.{table} failed") from exc
    return {"statement_id": statement_id, "creator_id": draft.creator_id, "lines": len(draft.lines)}


def _local(micros: int, tz: str) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- read back


def list_statements(client: Client, db: str, creator: str | None = None) -> list[dict[str, Any]]:
    """Every statement (newest period first per creator), money as exact Decimals."""
    clause, params = where(("creator_id = {creator:String}", "creator", creator))
    return _q(
        client,
        "SELECT statement_id, creator_id, period, cycle, period_start, period_end, currency, tz, "
        "toUnixTimestamp64Micro(as_of) AS as_of, toUnixTimestamp64Micro(closed_at) AS closed_at, forced, "
        f"gross, refunds, net, commission, lines, orders FROM {db}.statements{clause} "
        "ORDER BY creator_id, period_start DESC, closed_at DESC",
        params,
    )


def get_statement(client: Client, db: str, statement_id: str) -> dict[str, Any]:
    """One statement's header; ``ConfigError`` when there is none with that id."""
    rows = [r for r in _q(
        client,
        "SELECT statement_id, creator_id, period, cycle, period_start, period_end, currency, tz, "
        "toUnixTimestamp64Micro(as_of) AS as_of, toUnixTimestamp64Micro(closed_at) AS closed_at, forced, "
        f"gross, refunds, net, commission, lines, orders FROM {db}.statements "
        "WHERE statement_id = {id:String}",
        {"id": statement_id},
    )]  # fmt: skip
    if not rows:
        raise ConfigError(f"no statement with id {statement_id!r} (see reelroi statements list)")
    return rows[0]


def statement_lines(client: Client, db: str, statement_id: str) -> list[dict[str, Any]]:
    """A statement's lines in order: period lines first, then adjustments by period."""
    return _q(
        client,
        "SELECT line_no, kind, period, period_start, period_end, plan_id, drama_id, commission_rate, "
        f"gross, refunds, net, commission FROM {db}.statement_lines "
        "WHERE statement_id = {id:String} ORDER BY line_no",
        {"id": statement_id},
    )


def statement_orders(client: Client, db: str, statement_id: str) -> list[dict[str, Any]]:
    """The orders explaining each line of a statement, with their linked refunds."""
    return _q(
        client,
        "SELECT o.line_no AS line_no, l.kind AS kind, o.period AS period, o.plan_id AS plan_id, "
        "o.order_id AS order_id, toUnixTimestamp64Micro(o.paid_at) AS paid_at, o.drama_id AS drama_id, "
        "o.commission_rate AS commission_rate, o.gross AS gross, o.refunds AS refunds, o.net AS net, "
        "o.commission AS commission, o.refund_ids AS refund_ids, "
        "arrayMap(t -> toUnixTimestamp64Micro(t), o.refund_times) AS refund_times, o.refund_amounts AS refund_amounts "
        f"FROM {db}.statement_orders AS o INNER JOIN {db}.statement_lines AS l "
        "ON l.statement_id = o.statement_id AND l.line_no = o.line_no "
        "WHERE o.statement_id = {id:String} ORDER BY line_no, order_id",
        {"id": statement_id},
    )
