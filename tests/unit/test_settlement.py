"""The pure rules of creator statements (attribution/settlement.py): periods, lines, adjustments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.settlement import (
    ADJUSTMENT_LINE,
    CYCLES,
    PERIOD_LINE,
    Draft,
    Figures,
    Issued,
    Money,
    Period,
    PlanInfo,
    Refused,
    check_closable,
    draft_statement,
    groups_to_settle,
    parse_period,
    period_of,
    total,
)

PLANS = {"pB": PlanInfo("dr1", Decimal("0.3")), "pC": PlanInfo("dr2", Decimal("0.2"))}
RATE = {"pB": Decimal("0.3"), "pC": Decimal("0.2")}
_ids = iter(range(1, 10**9))


def money(plan: str, order: str, day: date, value: str, kind: str = "payment", event: str | None = None) -> Money:
    v = Decimal(value) if kind == "payment" else -Decimal(value)
    ts = int(datetime(day.year, day.month, day.day, 2, tzinfo=UTC).timestamp() * 1_000_000)
    eid = event or f"{kind}-{order}-{next(_ids)}"
    return Money(plan, order, eid, kind, ts, day, v, RATE[plan] * v, ts, "dr1")


def daily(rows: list[Money]) -> list[tuple[str, date, Figures]]:
    return [(m.plan_id, m.day, m.figures) for m in rows]


def issued_of(drafts: list[Draft]) -> tuple[dict[tuple[str, str], Figures], list[Issued]]:
    """What a sink would read back from the closed statements ``drafts``."""
    totals: dict[tuple[str, str], Figures] = {}
    orders = []
    for d in drafts:
        for line in d.lines:
            key = (line.period.name, line.plan_id)
            totals[key] = totals.get(key, Figures()) + line.figures
            for o in line.orders:
                orders.append(
                    Issued(line.period.name, line.plan_id, o.order_id, o.paid_at_us, o.drama_id, o.figures, o.refunds)
                )
    return totals, orders


def close(period: Period, rows: list[Money], drafts: list[Draft]) -> Draft:
    check_closable(period, [d.period for d in drafts])
    totals, orders = issued_of(drafts)
    groups = groups_to_settle(period, daily(rows), totals)
    return draft_statement("cr1", period, groups, rows, orders, PLANS)


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("day", "cycle", "name", "start", "end"),
    [
        (date(2026, 11, 17), "monthly", "2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        (date(2026, 12, 31), "monthly", "2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        (date(2028, 2, 29), "monthly", "2028-02", date(2028, 2, 1), date(2028, 2, 29)),
        (date(2026, 11, 15), "semimonthly", "2026-11-H1", date(2026, 11, 1), date(2026, 11, 15)),
        (date(2026, 11, 16), "semimonthly", "2026-11-H2", date(2026, 11, 16), date(2026, 11, 30)),
        (date(2026, 11, 8), "weekly", "2026-W45", date(2026, 11, 2), date(2026, 11, 8)),
        (date(2027, 1, 1), "weekly", "2026-W53", date(2026, 12, 28), date(2027, 1, 3)),  # ISO year of the Monday
    ],
)
def test_period_of_a_date(day: date, cycle: str, name: str, start: date, end: date) -> None:
    period = period_of(day, cycle)
    assert (period.name, period.start, period.end) == (name, start, end)
    assert parse_period(name) == period == parse_period(name, cycle)


@settings(max_examples=300)
@given(st.dates(date(2000, 1, 1), date(2100, 12, 31)), st.sampled_from(CYCLES))
def test_periods_tile_the_calendar_and_their_names_parse_back(day: date, cycle: str) -> None:
    period = period_of(day, cycle)
    assert period.contains(day) and parse_period(period.name) == period
    following = period_of(period.end + timedelta(days=1), cycle)
    assert following.start == period.end + timedelta(days=1) and following.name > period.name


@pytest.mark.parametrize("name", ["2026-13", "2026-00", "2026-11-H3", "2025-W53", "2026-W00", "Nov 2026", "2026-1"])
def test_bad_period_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        parse_period(name)


def test_a_period_name_must_be_in_the_cycle_asked_for() -> None:
    with pytest.raises(ValueError, match="is semimonthly, not monthly"):
        parse_period("2026-11-H1", "monthly")


def test_a_period_ends_at_local_midnight_after_its_last_day() -> None:
    assert parse_period("2026-10").ends_at(ZoneInfo("Asia/Shanghai")) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    # New York is on summer time (UTC-4) again on 1 April
    assert parse_period("2026-03").ends_at(ZoneInfo("America/New_York")) == datetime(2026, 4, 1, 4, tzinfo=UTC)


def test_periods_close_in_order_in_one_cycle() -> None:
    oct_, nov = parse_period("2026-10"), parse_period("2026-11")
    check_closable(nov, [oct_])
    with pytest.raises(Refused, match=r"2026-11 is already closed$"):
        check_closable(nov, [oct_, nov])
    with pytest.raises(Refused, match="2026-11 is already closed, and periods close in order"):
        check_closable(oct_, [nov])
    with pytest.raises(Refused, match="statements are monthly"):
        check_closable(parse_period("2026-W50"), [nov])


# --------------------------------------------------------------------------- lines and adjustments


def test_a_first_statement_has_a_line_per_plan_of_its_period() -> None:
    oct_ = parse_period("2026-10")
    rows = [
        money("pB", "o1", date(2026, 10, 5), "100"),
        money("pB", "o1", date(2026, 10, 9), "40", "refund"),
        money("pC", "o2", date(2026, 10, 31), "50"),
        money("pC", "o3", date(2026, 11, 1), "70"),  # after the period: not on it
    ]
    draft = close(oct_, rows, [])
    assert [(x.kind, x.plan_id, x.drama_id, x.rate) for x in draft.lines] == [
        (PERIOD_LINE, "pB", "dr1", Decimal("0.3")),
        (PERIOD_LINE, "pC", "dr2", Decimal("0.2")),
    ]
    assert draft.lines[0].figures == Figures(Decimal(100), Decimal(40), Decimal(60), Decimal(18))
    [o1] = draft.lines[0].orders
    assert [(r.amount, r.ts_us) for r in o1.refunds] == [(Decimal(40), rows[1].ts_us)]
    assert draft.figures == Figures(Decimal(150), Decimal(40), Decimal(110), Decimal(28))


def test_later_changes_become_adjustments_naming_their_period() -> None:
    oct_, nov = parse_period("2026-10"), parse_period("2026-11")
    rows = [money("pB", "o1", date(2026, 10, 5), "100"), money("pC", "o2", date(2026, 10, 6), "10")]
    first = close(oct_, rows, [])
    later = [
        rows[0],  # o2's user turned out to belong elsewhere: its money is gone from pC
        money("pB", "o5", date(2026, 10, 20), "30"),  # late payment
        money("pB", "o1", date(2026, 10, 25), "40", "refund", event="r1"),  # late refund
        money("pB", "o1", date(2026, 11, 3), "10", "refund", event="r2"),
    ]
    second = close(nov, later, [first])
    got = [(x.kind, x.period.name, x.plan_id, x.figures) for x in second.lines]
    assert got == [
        (PERIOD_LINE, "2026-11", "pB", Figures(Decimal(0), Decimal(10), Decimal(-10), Decimal(-3))),
        (ADJUSTMENT_LINE, "2026-10", "pB", Figures(Decimal(30), Decimal(40), Decimal(-10), Decimal(-3))),
        (ADJUSTMENT_LINE, "2026-10", "pC", Figures(Decimal(-10), Decimal(0), Decimal(-10), Decimal(-2))),
    ]
    adjustment = second.lines[1]
    assert [(o.order_id, o.figures.commission, [r.event_id for r in o.refunds]) for o in adjustment.orders] == [
        ("o1", Decimal(-12), ["r1"]),
        ("o5", Decimal(9), []),
    ]
    for line in second.lines:
        assert total(o.figures for o in line.orders) == line.figures
    # nothing changed since: a third close has no adjustments
    third = close(parse_period("2026-12"), later, [first, second])
    assert third.lines == ()


def test_a_reversed_refund_shows_with_a_negative_amount() -> None:
    oct_ = parse_period("2026-10")
    pay_ = money("pB", "o1", date(2026, 10, 5), "100")
    refund_ = money("pB", "o1", date(2026, 10, 9), "40", "refund", event="r1")
    first = close(oct_, [pay_, refund_], [])
    second = close(parse_period("2026-11"), [pay_], [first])  # the refund is no longer counted
    [line] = second.lines
    [order] = line.orders
    assert order.figures == Figures(Decimal(0), Decimal(-40), Decimal(40), Decimal(12))
    assert [(r.event_id, r.amount) for r in order.refunds] == [("r1", Decimal(-40))]


_days = st.dates(date(2026, 9, 1), date(2027, 1, 31))
_rows = st.lists(
    st.tuples(
        st.sampled_from(["pB", "pC"]),
        st.sampled_from(["o1", "o2", "o3", "o4"]),
        _days,
        st.sampled_from(["payment", "refund"]),
        st.decimals(min_value=1, max_value=500, places=2),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_rows, min_size=1, max_size=4), st.sampled_from(CYCLES))
def test_the_sum_of_all_statements_is_the_report_up_to_the_latest_period(history: list, cycle: str) -> None:
    """Whatever the money does between closes, the statements add up to it, and closed ones never change."""
    drafts: list[Draft] = []
    period = period_of(date(2026, 9, 20), cycle)
    for rows_spec in history:
        rows = [money(p, o, d, str(v), k, event=f"{k}-{p}-{o}-{d}-{v}") for p, o, d, k, v in rows_spec]
        snapshot = list(drafts)
        draft = close(period, rows, drafts)
        drafts.append(draft)
        assert drafts[:-1] == snapshot
        statements = total(d.figures for d in drafts)
        report = total(m.figures for m in rows if m.day <= period.end)
        assert statements == report
        for line in draft.lines:
            assert total(o.figures for o in line.orders) == line.figures
            assert line.figures or line.kind == PERIOD_LINE
        period = period_of(period.end + timedelta(days=1 + len(rows_spec) % 20), cycle)
