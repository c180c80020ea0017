"""Creator statements (分账, SPEC section 5): settlement periods and what a statement holds.

Pure: the sink (sinks/statements.py) reads the money and the statements
already closed, calls these functions and writes what they return.

A creator is settled in periods of one cycle (``monthly`` "2026-11",
``semimonthly`` "2026-11-H1" / "2026-11-H2", ``weekly`` ISO "2026-W45"), in
local dates. Closing period P writes, per plan, the figures of the money dated
in P (``period`` lines), plus an ``adjustment`` line for every (earlier
period, plan) whose current figures differ from what the creator's statements
have issued for it so far. Hence the sum of all of a creator's statements is,
when the latest is closed, the commission report over every date up to P's end.
Every line carries the orders that explain it, and each line's figures are the
sum of its orders' (an adjustment's orders are the per-order differences).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from attribution.errors import ConfigError
from attribution.fx import EXACT

CYCLES = ("monthly", "semimonthly", "weekly")
PERIOD_LINE = "period"
ADJUSTMENT_LINE = "adjustment"
ZERO = Decimal(0)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_HALF = re.compile(r"(\d{4})-(\d{2})-H([12])")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True, order=True, slots=True)
class Period:
    """One settlement period: local dates ``start`` to ``end`` inclusive, in one cycle."""

    start: date
    end: date
    cycle: str

    @property
    def name(self) -> str:
        if self.cycle == "weekly":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        month = f"{self.start.year}-{self.start.month:02d}"
        if self.cycle == "semimonthly":
            return f"{month}-H{1 if self.start.day == 1 else 2}"
        return month

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def ends_at(self, zone: ZoneInfo) -> datetime:
        """The instant (UTC) the period is over: local midnight after its last day."""
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)

    def __str__(self) -> str:
        return self.name


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def period_of(day: date, cycle: str) -> Period:
    """The period of ``cycle`` that contains local date ``day``."""
    if cycle == "monthly":
        return Period(day.replace(day=1), _month_end(day.year, day.month), cycle)
    if cycle == "semimonthly":
        if day.day <= 15:
            return Period(day.replace(day=1), day.replace(day=15), cycle)
        return Period(day.replace(day=16), _month_end(day.year, day.month), cycle)
    if cycle == "weekly":
        monday = day - timedelta(days=day.weekday())
        return Period(monday, monday + timedelta(days=6), cycle)
    raise ValueError(f"unknown cycle {cycle!r} (use one of {', '.join(CYCLES)})")


def cycle_of(name: str) -> str:
    """The cycle a period name is spelled in: ``2026-11``, ``2026-11-H2``, ``2026-W45``."""
    if _MONTH.fullmatch(name):
        return "monthly"
    if _HALF.fullmatch(name):
        return "semimonthly"
    if _WEEK.fullmatch(name):
        return "weekly"
    raise ValueError(f"not a period: {name!r} (use 2026-11 monthly, 2026-11-H1 semimonthly or 2026-W45 weekly)")


def parse_period(name: str, cycle: str | None = None) -> Period:
    """The period named ``name``; ``cycle``, when given, must be the one the name is spelled in."""
    spelled = cycle_of(name.strip())
    if cycle is not None and cycle != spelled:
        raise ValueError(f"period {name!r} is {spelled}, not {cycle}")
    text = name.strip()
    try:
        if spelled == "weekly":
            year, week = (int(g) for g in _WEEK.fullmatch(text).groups())  # type: ignore[union-attr]
            return period_of(date.fromisocalendar(year, week, 1), spelled)
        match = _MONTH.fullmatch(text) or _HALF.fullmatch(text)
        assert match is not None
        year, month = int(match.group(1)), int(match.group(2))
        half = int(match.group(3)) if spelled == "semimonthly" else 1
        return period_of(date(year, month, 1 if half == 1 else 16), spelled)
    except ValueError:
        raise ValueError(f"not a period: {name!r}") from None


@dataclass(frozen=True, slots=True)
class Figures:
    """Money of a line or an order: payments, refunds (positive), net and commission (signed)."""

    gross: Decimal = ZERO
    refunds: Decimal = ZERO
    net: Decimal = ZERO
    commission: Decimal = ZERO

    def __add__(self, other: Figures) -> Figures:
        add = EXACT.add
        return Figures(
            add(self.gross, other.gross),
            add(self.refunds, other.refunds),
            add(self.net, other.net),
            add(self.commission, other.commission),
        )

    def __sub__(self, other: Figures) -> Figures:
        sub = EXACT.subtract
        return Figures(
            sub(self.gross, other.gross),
            sub(self.refunds, other.refunds),
            sub(self.net, other.net),
            sub(self.commission, other.commission),
        )

    def __bool__(self) -> bool:
        return any((self.gross, self.refunds, self.net, self.commission))


def total(figures: Iterable[Figures]) -> Figures:
    out = Figures()
    for f in figures:
        out = out + f
    return out


@dataclass(frozen=True, slots=True)
class Money:
    """One current money row of a creator's plan: a payment or a refund, with its order's payment."""

    plan_id: str
    order_id: str
    event_id: str
    kind: str  # payment | refund
    ts_us: int
    day: date
    value: Decimal  # reporting currency, refunds negative
    commission: Decimal
    paid_at_us: int | None  # the order's payment time, whatever its date
    drama_id: str  # the order's payment drama ("" when unknown)

    @property
    def figures(self) -> Figures:
        if self.kind == "payment":
            return Figures(gross=self.value, net=self.value, commission=self.commission)
        return Figures(refunds=EXACT.minus(self.value), net=self.value, commission=self.commission)


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund linked to an order line; ``amount`` positive, negative when an issued one is reversed."""

    event_id: str
    ts_us: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """One order's part of a line. In an adjustment, the difference from what was issued."""

    order_id: str
    paid_at_us: int | None
    drama_id: str
    figures: Figures
    refunds: tuple[Refund, ...] = ()


@dataclass(frozen=True, slots=True)
class Issued:
    """An order row of a statement already closed, filed under the period it belongs to."""

    period: str
    plan_id: str
    order_id: str
    paid_at_us: int | None
    drama_id: str
    figures: Figures
    refunds: tuple[Refund, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanInfo:
    drama_id: str
    rate: Decimal | None


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # period | adjustment
    period: Period  # the period the money belongs to
    plan_id: str
    drama_id: str
    rate: Decimal | None
    figures: Figures
    orders: tuple[OrderDetail, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Draft:
    """A statement ready to be written: one creator, one period, its lines in order."""

    creator_id: str
    period: Period
    lines: tuple[Line, ...]

    @property
    def figures(self) -> Figures:
        return total(line.figures for line in self.lines)


class Refused(ConfigError):
    """A period this creator cannot close (already closed, before a closed one, another cycle)."""


def check_closable(period: Period, closed: Sequence[Period]) -> None:
    """Refuse ``period`` unless it comes after every period ``closed`` for the creator, in the same cycle.

    Closing out of order would settle money twice: an earlier period's money is
    already on a later statement as adjustments.
    """
    same = [p for p in closed if p == period]
    if same:
        raise Refused(f"{period.name} is already closed")
    other = sorted({p.cycle for p in closed} - {period.cycle})
    if other:
        raise Refused(f"statements are {other[0]}; a {period.cycle} period cannot follow them")
    later = [p for p in closed if p.end >= period.start]
    if later:
        raise Refused(f"{max(later).name} is already closed, and periods close in order")


def groups_to_settle(
    period: Period,
    daily: Iterable[tuple[str, date, Figures]],
    issued: Mapping[tuple[str, str], Figures],
) -> list[tuple[Period, str]]:
    """(period, plan) pairs the statement for ``period`` needs a line for.

    ``daily``: current (plan, local date, figures) of the creator, dates up to
    ``period.end``; ``issued``: totals already on statements by (period name, plan).
    Every plan with money dated in ``period``; every earlier (period, plan) whose
    current figures differ from what was issued (no longer any money included).
    """
    current: dict[tuple[Period, str], Figures] = {}
    for plan_id, day, figures in daily:
        if day > period.end:
            continue
        key = (period_of(day, period.cycle), plan_id)
        current[key] = current.get(key, Figures()) + figures
    earlier_issued = {
        (parse_period(name, period.cycle), plan_id): f for (name, plan_id), f in issued.items() if name != period.name
    }
    keys = {k for k in current if k[0] == period}
    for key in set(current) | set(earlier_issued):
        if key[0] != period and current.get(key, Figures()) != earlier_issued.get(key, Figures()):
            keys.add(key)
    return sorted(keys, key=lambda k: (k[0] != period, k[0], k[1]))


def _orders(rows: Iterable[Money]) -> dict[str, OrderDetail]:
    out: dict[str, OrderDetail] = {}
    for m in sorted(rows, key=lambda m: (m.order_id, m.ts_us, m.event_id)):
        prev = out.get(m.order_id) or OrderDetail(m.order_id, m.paid_at_us, m.drama_id, Figures())
        refunds = prev.refunds + ((Refund(m.event_id, m.ts_us, EXACT.minus(m.value)),) if m.kind == "refund" else ())
        out[m.order_id] = OrderDetail(m.order_id, prev.paid_at_us, prev.drama_id, prev.figures + m.figures, refunds)
    return out


def _difference(current: OrderDetail | None, issued: Sequence[Issued], order_id: str) -> OrderDetail:
    was = total(i.figures for i in issued)
    was_refunds = {r.event_id: r for i in issued for r in i.refunds}
    now_refunds = {r.event_id: r for r in current.refunds} if current else {}
    changed = [r for eid, r in now_refunds.items() if was_refunds.get(eid) != r]
    reversed_ = [
        Refund(r.event_id, r.ts_us, EXACT.minus(r.amount))
        for eid, r in was_refunds.items()
        if now_refunds.get(eid) != r
    ]
    refunds = tuple(sorted(changed + reversed_, key=lambda r: (r.ts_us, r.event_id, r.amount)))
    figures = (current.figures if current else Figures()) - was
    if current is not None:
        return OrderDetail(order_id, current.paid_at_us, current.drama_id, figures, refunds)
    return OrderDetail(order_id, issued[0].paid_at_us, issued[0].drama_id, figures, refunds)


def draft_statement(
    creator_id: str,
    period: Period,
    groups: Sequence[tuple[Period, str]],
    money: Iterable[Money],
    issued: Iterable[Issued],
    plans: Mapping[str, PlanInfo],
) -> Draft:
    """The statement of ``creator_id`` for ``period``: a line per group, each explained by its orders.

    ``money``: the creator's current money rows covering at least ``groups``;
    ``issued``: the order rows of the creator's closed statements.
    A period line holds the orders dated in it; an adjustment line the orders
    whose figures differ from what was issued for that (period, plan). An
    adjustment whose difference turned out to be nothing is left out.
    """
    wanted = set(groups)
    by_group: dict[tuple[Period, str], list[Money]] = {}
    for m in money:
        key = (period_of(m.day, period.cycle), m.plan_id)
        if key in wanted:
            by_group.setdefault(key, []).append(m)
    issued_by: dict[tuple[str, str], dict[str, list[Issued]]] = {}
    for i in issued:
        issued_by.setdefault((i.period, i.plan_id), {}).setdefault(i.order_id, []).append(i)
    lines = []
    for key in groups:
        group_period, plan_id = key
        info = plans.get(plan_id, PlanInfo("", None))
        now = _orders(by_group.get(key, []))
        if group_period == period:
            orders = tuple(now[o] for o in sorted(now))
            kind = PERIOD_LINE
        else:
            was = issued_by.get((group_period.name, plan_id), {})
            diffs = (_difference(now.get(o), was.get(o, []), o) for o in sorted(set(now) | set(was)))
            orders = tuple(d for d in diffs if d.figures)
            kind = ADJUSTMENT_LINE
            if not orders:
                continue
        figures = total(o.figures for o in orders)
        lines.append(Line(kind, group_period, plan_id, info.drama_id, info.rate, figures, orders))
    return Draft(creator_id, period, tuple(lines))
