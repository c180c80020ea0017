"""Hostile ids and rejected lines through the real commands: nothing reaches the terminal raw, no
CSV cell is a formula, and a rejected line that is not UTF-8 is shown marked as such."""

from __future__ import annotations

import csv
import io

import pytest

from attribution import testing as kit

pytestmark = pytest.mark.integration

ANSI_ID = "c\x1b[2J\x1b]0;owned\x07"  # clear the screen, set the window title
FORMULA_ID = '=HYPERLINK("http://evil","x")'
LINES = [
    kit.campaign(campaign_id=ANSI_ID, buyer_id="b1"),
    kit.campaign(campaign_id=FORMULA_ID, buyer_id="@b2"),
    kit.spend(campaign_id=ANSI_ID, amount="100"),
    kit.spend(campaign_id=FORMULA_ID, amount="50"),
    kit.click(campaign_id=FORMULA_ID, click_id="k1", device_id="d1"),
    kit.redirect(user_id="u1", click_id="k1"),
    kit.payment(user_id="u1", order_id="o1", amount="20.00"),
    kit.plan(plan_id="-1+1", creator_id="@cr"),
    kit.click(plan_id="-1+1", click_id="k2", device_id="d2"),
    kit.redirect(user_id="u2", click_id="k2"),
    kit.payment(user_id="u2", order_id="o2", amount="20.00"),
    kit.refund(ts="2026-11-03T10:00:00+08:00", order_id="o2", amount="20.00"),  # the next day's net: -20.00
    b'{"type":"click\x1b[31m","oops":1}',
    b"\xff\xfe\x1b[2J not utf-8",
    b"ff41",  # hex digits are text; the marker must not be guessed from the look of a line
]


def test_table_escapes_control_characters_and_csv_escapes_formulas(store) -> None:  # type: ignore[no-untyped-def]
    store.replay(LINES)
    code, out, err = store.run("roi", "--db", store.dsn, "--format", "table")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "c\\x1b[2J\\x1b]0;owned\\x07" in out
    code, out, err = store.run("roi", "--db", store.dsn, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    by_id = {r["source_id"]: r for r in rows}
    assert "'" + FORMULA_ID in by_id and FORMULA_ID not in by_id
    assert ANSI_ID in by_id  # CSV is data: kept exact, but no control character starts a formula
    assert all(not v.startswith(("=", "+", "@")) for r in rows for v in r.values())
    code, out, err = store.run("commission", "--db", store.dsn, "--format", "csv")
    assert code == 0, err
    days = {r["date"]: r for r in csv.DictReader(io.StringIO(out))}
    assert days["2026-11-03"]["plan_id"] == "'-1+1" and days["2026-11-03"]["creator_id"] == "'@cr"
    assert days["2026-11-03"]["net"] == "-20.00"  # negative money stays a number
    assert days["2026-11-03"]["commission"] == "-6.00"


def test_rejects_show_escapes_lines_and_marks_bytes_that_are_not_utf8(store) -> None:  # type: ignore[no-untyped-def]
    store.replay(LINES)
    code, out, err = store.run("rejects", "--db", store.dsn, "--show", "10")
    assert code == 0, err
    assert "\x1b" not in out + err and "\xff" not in err
    shown = err.splitlines()
    assert any(line.endswith("(not UTF-8) b'\\xff\\xfe\\x1b[2J not utf-8'") for line in shown), err
    assert any(line.endswith('{"type":"click\\x1b[31m","oops":1}') for line in shown), err
    assert any(line.endswith("\tff41") for line in shown), err


def test_csv_downloads_escape_formulas(store) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from reelroi.api.app import Store, create_app
    from sinks.connection import connect
    from sinks.tokens import create_token

    store.replay(LINES)
    client = connect(store.dsn)
    token = create_token(client, store.database, "admin", "")[0]
    api = TestClient(create_app(Store(client, store.database)))
    headers = {"Authorization": f"Bearer {token}"}
    roi = api.get("/api/v1/roi", params={"group_by": "campaign", "format": "csv"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(roi.text)))
    assert {r["source_id"] for r in rows} == {"'" + FORMULA_ID, ANSI_ID, "'-1+1"}  # the plan is a source too
    assert {r["buyer_id"] for r in rows if r["source_kind"] == "campaign"} == {"b1", "'@b2"}
    commission = api.get("/api/v1/commission", params={"group_by": "day", "format": "csv"}, headers=headers)
    days = {r["date"]: r for r in csv.DictReader(io.StringIO(commission.text))}
    assert days["2026-11-03"]["net"] == "-20.00" and days["2026-11-03"]["commission"] == "-6.00"
    client.close()
