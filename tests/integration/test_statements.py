"""Creator statements (SPEC section 5, "Creator statements") through ``reelroi statements`` on embedded ClickHouse.

October is closed; then a replay brings a late payment and a refund dated in
October and new November money; November is closed. October's statement must
not change by a byte, November's must carry the October difference as
adjustment lines, and the sum of all statements must equal the commission
report up to the end of November.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from attribution import testing as kit
from sinks.connection import connect
from sinks.reports import commission_rows
from sinks.statements import STATEMENT_TABLES, list_statements, statement_lines, statement_orders

pytestmark = pytest.mark.integration

FIGURES = ("gross", "refunds", "net", "commission")


def refund(event: str, order: str, ts: str, amount: str) -> bytes:
    return kit.refund(event_id=event, order_id=order, ts=ts, amount=amount)


CONFIG = [
    kit.plan(plan_id="pB", creator_id="cr1", drama_id="dr1", commission_rate="0.3", ts="2026-10-01T00:00:00Z"),
    kit.plan(plan_id="pC", creator_id="cr1", drama_id="dr2", commission_rate="0.2", ts="2026-10-01T00:00:00Z"),
    kit.plan(plan_id="pD", creator_id="cr2", drama_id="dr3", commission_rate="0.4", ts="2026-10-01T00:00:00Z"),
]
OCTOBER = [
    *CONFIG,
    *kit.plan_user("u1", "pB", "2026-10-05"),
    kit.pay("o1", "u1", "2026-10-05T10:00:00+08:00", "100"),
    *kit.plan_user("u2", "pC", "2026-10-10"),
    kit.pay("o2", "u2", "2026-10-10T10:00:00+08:00", "50", "dr2"),
    refund("r-o2", "o2", "2026-10-12T10:00:00+08:00", "10"),
    *kit.plan_user("u3", "pD", "2026-10-15"),
    kit.pay("o3", "u3", "2026-10-15T10:00:00+08:00", "80", "dr3"),
    kit.pay("o4", "u1", "2026-11-01T00:30:00+08:00", "20"),  # the data's clock is past October
]
LATER = [
    kit.pay("o5", "u1", "2026-10-20T10:00:00+08:00", "30"),  # arrives after October was closed
    refund("r-o1", "o1", "2026-10-25T10:00:00+08:00", "40"),
    kit.pay("o6", "u2", "2026-11-05T10:00:00+08:00", "60", "dr2"),
    refund("r-o4", "o4", "2026-11-10T10:00:00+08:00", "5"),
    refund("r-o3", "o3", "2026-11-03T10:00:00+08:00", "20"),  # cr2's November holds only this refund
    kit.ad_unlock(event_id="iaa-dec", user_id="u3", ts="2026-12-01T01:00:00+08:00"),  # clock past November
]


def run_ok(store: Any, *args: str) -> tuple[str, str]:
    code, out, err = store.run("statements", *args, "--db", store.dsn)
    assert code == 0, f"reelroi statements {args} exited {code}\nstdout: {out}\nstderr: {err}"
    return out, err


def run_refused(store: Any, *args: str) -> str:
    code, out, err = store.run("statements", *args, "--db", store.dsn)
    assert code == 2, f"expected a refusal, got {code}\nstdout: {out}\nstderr: {err}"
    return err


def listing(store: Any, *args: str) -> list[dict[str, Any]]:
    out, _ = run_ok(store, "list", *args, "--format", "json")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def shown(store: Any, statement_id: str) -> tuple[str, str, str]:
    """The statement as ``show`` prints it: lines (JSON), orders (JSON) and orders (CSV)."""
    lines, _ = run_ok(store, "show", statement_id, "--format", "json")
    orders, _ = run_ok(store, "show", statement_id, "--orders", "--format", "json")
    csv, _ = run_ok(store, "show", statement_id, "--orders", "--format", "csv")
    return lines, orders, csv


def stored_rows(client: Any, db: str) -> dict[str, list[str]]:
    """Every row of the statement tables, as text, sorted."""
    return {t: sorted(repr(r) for r in client.query(f"SELECT * FROM {db}.{t}").result_rows) for t in STATEMENT_TABLES}


def by_period(store: Any, creator: str) -> dict[str, str]:
    return {s["period"]: s["statement_id"] for s in listing(store, "--creator", creator)}


def exact_sums(client: Any, db: str) -> tuple[dict[str, tuple[Decimal, ...]], dict[str, tuple[Decimal, ...]]]:
    """Per creator: the sum of every statement line, and the commission report up to 2026-11-30."""
    statements: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for s in list_statements(client, db):
        for line in statement_lines(client, db, s["statement_id"]):
            for i, name in enumerate(FIGURES):
                statements[s["creator_id"]][i] += line[name]
    report: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for row in commission_rows(client, db, date_to=date(2026, 11, 30)):
        for i, name in enumerate(FIGURES):
            report[row["creator_id"]][i] += row[name]
    return {k: tuple(v) for k, v in statements.items()}, {k: tuple(v) for k, v in report.items()}


def test_closed_statements_never_change_and_sum_to_the_commission_report(store: Any) -> None:
    store.replay(OCTOBER)
    out, _ = run_ok(store, "close", "--period", "2026-10")
    assert out.count("closed 2026-10 for") == 2
    october = {c: by_period(store, c)["2026-10"] for c in ("cr1", "cr2")}
    before = {c: shown(store, sid) for c, sid in october.items()}
    lines = json.loads(before["cr1"][0])["lines"]
    assert [(x["kind"], x["period"], x["plan_id"], x["drama_id"], x["commission_rate"]) for x in lines] == [
        ("period", "2026-10", "pB", "dr1", "0.3"),
        ("period", "2026-10", "pC", "dr2", "0.2"),
    ]
    assert [(x["gross"], x["refunds"], x["net"], x["commission"]) for x in lines] == [
        ("100.00", "0.00", "100.00", "30.00"),
        ("50.00", "10.00", "40.00", "8.00"),
    ]
    client = connect(store.dsn)
    try:
        raw_before = stored_rows(client, store.database)

        store.replay([*OCTOBER, *LATER])  # a replay rebuilds the facts; statements are not among them
        run_ok(store, "close", "--period", "2026-11")

        assert {c: shown(store, sid) for c, sid in october.items()} == before  # byte for byte
        raw_after = stored_rows(client, store.database)
        for table in STATEMENT_TABLES:  # October's rows are all still there, unchanged
            assert set(raw_before[table]) <= set(raw_after[table])

        november = json.loads(run_ok(store, "show", by_period(store, "cr1")["2026-11"], "--format", "json")[0])
        got = [(x["kind"], x["period"], x["plan_id"], x["gross"], x["refunds"], x["net"], x["commission"])
               for x in november["lines"]]  # fmt: skip
        assert got == [
            ("period", "2026-11", "pB", "20.00", "5.00", "15.00", "4.50"),
            ("period", "2026-11", "pC", "60.00", "0.00", "60.00", "12.00"),
            ("adjustment", "2026-10", "pB", "30.00", "40.00", "-10.00", "-3.00"),
        ]
        assert november["statement"]["commission"] == "13.50"

        refund_only = json.loads(run_ok(store, "show", by_period(store, "cr2")["2026-11"], "--format", "json")[0])
        assert [(x["gross"], x["refunds"], x["net"], x["commission"]) for x in refund_only["lines"]] == [
            ("0.00", "20.00", "-20.00", "-8.00")
        ]

        statements, report = exact_sums(client, store.database)
        assert statements == report and set(report) == {"cr1", "cr2"}

        # reattribute rebuilds every derived table again: the statements stay as they are
        code, _, err = store.run("reattribute", "--db", store.dsn)
        assert code == 0, err
        assert stored_rows(client, store.database) == raw_after
    finally:
        client.close()


def test_every_line_is_explained_by_its_orders(store: Any) -> None:
    store.replay(OCTOBER)
    run_ok(store, "close", "--period", "2026-10")
    store.replay([*OCTOBER, *LATER])
    run_ok(store, "close", "--period", "2026-11")
    client = connect(store.dsn)
    try:
        for s in list_statements(client, store.database):
            orders = statement_orders(client, store.database, s["statement_id"])
            for line in statement_lines(client, store.database, s["statement_id"]):
                mine = [o for o in orders if o["line_no"] == line["line_no"]]
                assert mine, line
                for name in FIGURES:
                    assert sum((o[name] for o in mine), Decimal(0)) == line[name], (s["period"], line, name)
    finally:
        client.close()
    sid = by_period(store, "cr1")["2026-11"]
    detail = json.loads(run_ok(store, "show", sid, "--orders", "--format", "json")[0])["orders"]
    rows = {(o["period"], o["order_id"]): o for o in detail}
    assert set(rows) == {("2026-11", "o4"), ("2026-11", "o6"), ("2026-10", "o5"), ("2026-10", "o1")}
    o4 = rows[("2026-11", "o4")]
    assert (o4["paid_at"], o4["drama_id"], o4["amount"], o4["commission_rate"], o4["commission"]) == (
        "2026-11-01T00:30:00+08:00", "dr1", "20.00", "0.3", "4.50",
    )  # fmt: skip
    assert o4["linked_refunds"] == [
        {"refund_event_id": "r-o4", "refunded_at": "2026-11-10T10:00:00+08:00", "amount": "5.00"}
    ]
    late_refund = rows[("2026-10", "o1")]  # the adjustment: o1's refund of 40 arrived after October closed
    assert (late_refund["paid_at"], late_refund["amount"], late_refund["refunds"], late_refund["commission"]) == (
        "2026-10-05T10:00:00+08:00", "0.00", "40.00", "-12.00",
    )  # fmt: skip
    csv, _ = run_ok(store, "show", sid, "--orders", "--format", "csv")
    header, *body = csv.splitlines()
    assert header.split(",")[:8] == [
        "line_no", "kind", "period", "plan_id", "order_id", "paid_at", "drama_id", "amount",
    ]  # fmt: skip
    assert any("2026-11-10T10:00:00+08:00 5.00" in row for row in body)


def test_closing_twice_out_of_order_or_too_early_is_refused(store: Any) -> None:
    store.replay(OCTOBER)
    assert "has not ended" in run_refused(store, "close", "--period", "2026-11")
    run_ok(store, "close", "--period", "2026-10")
    assert "already closed for every creator" in run_refused(store, "close", "--period", "2026-10")
    assert "2026-10 is already closed" in run_refused(store, "close", "--period", "2026-10", "--creator", "cr1")
    assert "not a period" in run_refused(store, "close", "--period", "2026-13")
    assert "is weekly, not monthly" in run_refused(store, "close", "--period", "2026-W45", "--cycle", "monthly")
    assert len(listing(store)) == 2
    assert "no statement with id 'st_nope'" in run_refused(store, "show", "st_nope")

    out, _ = run_ok(store, "close", "--period", "2026-11", "--creator", "cr1", "--force")
    assert out.startswith("closed 2026-11 for cr1: statement st_")
    forced = listing(store, "--creator", "cr1")
    assert [(s["period"], s["forced"]) for s in forced] == [("2026-11", True), ("2026-10", False)]
    assert "2026-11 is already closed, and periods close in order" in run_refused(
        store, "close", "--period", "2026-09", "--creator", "cr1"
    )
    assert "statements are monthly" in run_refused(
        store, "close", "--period", "2026-12-H1", "--creator", "cr1", "--force"
    )
    # cr2 has nothing new to settle and cr1 has closed November: nothing is left to close
    err = run_refused(store, "close", "--period", "2026-11", "--force")
    assert "skipped creator cr1: 2026-11 is already closed" in err and "already closed for every creator" in err
    assert len(listing(store)) == 3


def test_weekly_cycle_and_money_of_a_creator_first_settled_late(store: Any) -> None:
    store.replay([*OCTOBER, *LATER])
    run_ok(store, "close", "--period", "2026-W45", "--cycle", "weekly")  # Mon 2 .. Sun 8 November
    cr1 = json.loads(run_ok(store, "show", by_period(store, "cr1")["2026-W45"], "--format", "json")[0])
    assert cr1["statement"]["period_start"] == "2026-11-02" and cr1["statement"]["period_end"] == "2026-11-08"
    # everything of cr1 before the week was never settled: it shows as adjustments of its weeks
    periods = [(x["kind"], x["period"]) for x in cr1["lines"]]
    assert periods[0] == ("period", "2026-W45")
    assert {p for k, p in periods if k == "adjustment"} == {"2026-W41", "2026-W42", "2026-W43", "2026-W44"}
    client = connect(store.dsn)
    try:
        total = sum(
            (line["commission"] for line in statement_lines(client, store.database, cr1["statement"]["statement_id"])),
            Decimal(0),
        )
        report = sum(
            (r["commission"] for r in commission_rows(client, store.database, "cr1", None, date(2026, 11, 8))),
            Decimal(0),
        )
        assert total == report
    finally:
        client.close()
