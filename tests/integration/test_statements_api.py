"""Creator statements over HTTP (reelroi/api/statements.py) on embedded ClickHouse.

October is closed with ``reelroi statements close``; later events arrive and
November is closed through ``POST /api/v1/statements/close``. The API must
answer exactly what ``reelroi statements show`` prints (lines, orders, CSV),
and each token sees only what its role allows: a creator its own statements,
a buyer none, an admin all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attribution import testing as kit
from reelroi.api.app import Store, create_app, iter_routes
from sinks.connection import connect
from sinks.tokens import create_token

pytestmark = pytest.mark.integration


OCTOBER = [
    kit.plan(plan_id="pB", creator_id="cr1", drama_id="dr1", commission_rate="0.3", ts="2026-10-01T00:00:00Z"),
    kit.plan(plan_id="pC", creator_id="cr1", drama_id="dr2", commission_rate="0.2", ts="2026-10-01T00:00:00Z"),
    kit.plan(plan_id="pD", creator_id="cr2", drama_id="dr3", commission_rate="0.4", ts="2026-10-01T00:00:00Z"),
    kit.campaign(campaign_id="cA", buyer_id="bA", drama_id="dr1"),
    *kit.plan_user("u1", "pB", "2026-10-05"),
    kit.pay("o1", "u1", "2026-10-05T10:00:00+08:00", "100"),
    *kit.plan_user("u2", "pC", "2026-10-10"),
    kit.pay("o2", "u2", "2026-10-10T10:00:00+08:00", "50", "dr2"),
    kit.refund(event_id="r-o2", order_id="o2", ts="2026-10-12T10:00:00+08:00", amount="10"),
    *kit.plan_user("u3", "pD", "2026-10-15"),
    kit.pay("o3", "u3", "2026-10-15T10:00:00+08:00", "80", "dr3"),
    kit.pay("o4", "u1", "2026-11-01T00:30:00+08:00", "20"),  # the data's clock is past October
]
LATER = [
    kit.pay("o5", "u1", "2026-10-20T10:00:00+08:00", "30"),  # October, arriving after it was closed
    kit.refund(event_id="r-o1", order_id="o1", ts="2026-10-25T10:00:00+08:00", amount="40"),
    kit.pay("o6", "u2", "2026-11-05T10:00:00+08:00", "60", "dr2"),
    kit.refund(event_id="r-o4", order_id="o4", ts="2026-11-10T10:00:00+08:00", amount="5"),
    kit.refund(event_id="r-o3", order_id="o3", ts="2026-11-03T10:00:00+08:00", amount="20"),
    kit.ad_unlock(event_id="iaa-dec", user_id="u3", ts="2026-12-01T01:00:00+08:00"),  # the clock past November
]


class Api:
    """The app on the test's database, with a token per role."""

    def __init__(self, store: Any) -> None:
        self.cli = store
        self.client = connect(store.dsn)
        db = store.database
        self.tokens = {
            "admin": create_token(self.client, db, "admin", "")[0],
            "buyer": create_token(self.client, db, "buyer", "bA")[0],
            "cr1": create_token(self.client, db, "creator", "cr1")[0],
            "cr2": create_token(self.client, db, "creator", "cr2")[0],
        }
        self.http = TestClient(create_app(Store(self.client, db)))

    def get(self, who: str | None, path: str, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.http.get(path, params=params, headers=headers)

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def show(self, *args: str) -> str:
        """What ``reelroi statements show`` prints on stdout."""
        code, out, err = self.cli.run("statements", "show", *args, "--db", self.cli.dsn)
        assert code == 0, err
        return str(out)

    def ids(self, creator: str) -> dict[str, str]:
        rows = self.get("admin", "/api/v1/statements", creator_id=creator).json()["statements"]
        return {r["period"]: r["statement_id"] for r in rows}


@pytest.fixture
def api(store: Any) -> Any:
    store.replay(OCTOBER)
    code, _, err = store.run("statements", "close", "--period", "2026-10", "--db", store.dsn)
    assert code == 0, err
    store.replay([*OCTOBER, *LATER])
    helper = Api(store)
    yield helper
    helper.client.close()


def test_closing_through_the_api_is_for_admins_and_refuses_what_the_cli_refuses(api: Any) -> None:
    for who in ("buyer", "cr1"):
        r = api.post(who, "/api/v1/statements/close", {"period": "2026-11"})
        assert r.status_code == 403, (who, r.text)
    assert api.post("admin", "/api/v1/statements/close", {"period": "2026-13"}).status_code == 400
    assert api.post("admin", "/api/v1/statements/close", {"period": "2026-W45", "cycle": "monthly"}).status_code == 400
    assert (
        api.post("admin", "/api/v1/statements/close", {"period": "2026-12"})
        .json()["error"]
        .startswith("2026-12 has not ended")
    )
    r = api.post("admin", "/api/v1/statements/close", {"period": "2026-11"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["period"], done["cycle"], done["skipped"]) == ("2026-11", "monthly", [])
    assert sorted(w["creator_id"] for w in done["written"]) == ["cr1", "cr2"]
    assert all(w["statement_id"].startswith("st_") for w in done["written"])
    again = api.post("admin", "/api/v1/statements/close", {"period": "2026-11", "creator_id": "cr1"})
    assert again.status_code == 409 and "2026-11 is already closed" in again.json()["error"]


def test_each_role_sees_only_the_statements_it_may(api: Any) -> None:
    assert api.post("admin", "/api/v1/statements/close", {"period": "2026-11"}).status_code == 200
    every = api.get("admin", "/api/v1/statements").json()["statements"]
    assert sorted((s["creator_id"], s["period"]) for s in every) == [
        ("cr1", "2026-10"), ("cr1", "2026-11"), ("cr2", "2026-10"), ("cr2", "2026-11"),
    ]  # fmt: skip
    listed = json.loads(api.cli.run("statements", "list", "--db", api.cli.dsn, "--format", "json")[1])
    assert every == listed

    own = api.get("cr1", "/api/v1/statements").json()["statements"]
    assert [s["period"] for s in own] == ["2026-11", "2026-10"]  # newest first
    assert own == [s for s in every if s["creator_id"] == "cr1"]
    assert api.get("cr1", "/api/v1/statements", creator_id="cr1").json()["statements"] == own
    assert api.get("admin", "/api/v1/statements", creator_id="cr2").json()["statements"] == [
        s for s in every if s["creator_id"] == "cr2"
    ]
    assert api.get("cr1", "/api/v1/statements", creator_id="cr2").status_code == 403
    assert api.get("buyer", "/api/v1/statements").status_code == 403
    assert api.get(None, "/api/v1/statements").status_code == 401

    theirs = api.ids("cr2")["2026-11"]
    for path in (f"/api/v1/statements/{theirs}", f"/api/v1/statements/{theirs}/orders"):
        assert api.get("cr1", path).status_code == 404  # another creator's id reads as unknown
        assert api.get("cr2", path).status_code == 200
        assert api.get("admin", path).status_code == 200
        assert api.get("buyer", path).status_code == 403
    assert api.get("admin", "/api/v1/statements/st_0000000000000000").status_code == 404
    assert api.get("admin", "/api/v1/statements/bad%20id").status_code == 400


def test_lines_and_orders_equal_what_statements_show_prints(api: Any) -> None:
    assert api.post("admin", "/api/v1/statements/close", {"period": "2026-11"}).status_code == 200
    for creator in ("cr1", "cr2"):
        for sid in api.ids(creator).values():
            lines = api.get(creator, f"/api/v1/statements/{sid}")
            assert lines.status_code == 200
            assert lines.json() == json.loads(api.show(sid, "--format", "json"))
            orders = api.get(creator, f"/api/v1/statements/{sid}/orders")
            assert orders.json() == json.loads(api.show(sid, "--orders", "--format", "json"))
            csv = api.get(creator, f"/api/v1/statements/{sid}/orders", format="csv")
            assert csv.headers["content-type"] == "text/csv; charset=utf-8"
            assert f'filename="reelroi-statement-{sid}-orders.csv"' in csv.headers["content-disposition"]
            assert csv.text == api.show(sid, "--orders", "--format", "csv")
            excel = api.get(creator, f"/api/v1/statements/{sid}/orders", format="csv", bom="true")
            assert excel.content == b"\xef\xbb\xbf" + csv.content  # Excel reads the Chinese names right

    november = api.get("cr1", f"/api/v1/statements/{api.ids('cr1')['2026-11']}").json()
    assert november["statement"]["commission"] == "13.50"
    assert [(x["kind"], x["period"], x["plan_id"], x["drama_id"], x["commission_rate"], x["commission"])
            for x in november["lines"]] == [
        ("period", "2026-11", "pB", "dr1", "0.3", "4.50"),
        ("period", "2026-11", "pC", "dr2", "0.2", "12.00"),
        ("adjustment", "2026-10", "pB", "dr1", "0.3", "-3.00"),  # names the period it belongs to
    ]  # fmt: skip
    adjustment = november["lines"][2]
    assert (adjustment["period_start"], adjustment["period_end"]) == ("2026-10-01", "2026-10-31")

    orders = api.get("cr1", f"/api/v1/statements/{api.ids('cr1')['2026-11']}/orders").json()["orders"]
    o4 = next(o for o in orders if o["order_id"] == "o4")
    assert (o4["paid_at"], o4["drama_id"], o4["amount"], o4["commission_rate"], o4["commission"]) == (
        "2026-11-01T00:30:00+08:00", "dr1", "20.00", "0.3", "4.50",
    )  # fmt: skip
    assert o4["linked_refunds"] == [
        {"refund_event_id": "r-o4", "refunded_at": "2026-11-10T10:00:00+08:00", "amount": "5.00"}
    ]


def test_clawback_is_the_commission_refunds_took_back_not_the_refunded_sales(api: Any) -> None:
    got = api.get("cr1", "/api/v1/commission/clawback").json()
    assert got["rows"] == [
        {"date": "2026-10-12", "refunds": "10.00", "clawback": "-2.00"},  # pC at 0.2
        {"date": "2026-10-25", "refunds": "40.00", "clawback": "-12.00"},  # pB at 0.3
        {"date": "2026-11-10", "refunds": "5.00", "clawback": "-1.50"},
    ]
    assert got["totals"] == {"refunds": "55.00", "clawback": "-15.50"}
    # the commission report's refunds are the same refunded sales, day by day
    days = {r["date"]: r for r in api.get("cr1", "/api/v1/commission", group_by="day").json()["rows"]}
    for row in got["rows"]:
        assert days[row["date"]]["refunds"] == row["refunds"]
    # commission = rate x payments + clawback: 0.3 x 150 + 0.2 x 110 - 15.50
    assert api.get("cr1", "/api/v1/commission").json()["totals"]["commission"] == "51.50"

    assert api.get("cr1", "/api/v1/commission/clawback", plan_id="pB").json()["totals"]["clawback"] == "-13.50"
    window = api.get("cr1", "/api/v1/commission/clawback", **{"from": "2026-10-13", "to": "2026-10-31"}).json()
    assert window["totals"] == {"refunds": "40.00", "clawback": "-12.00"}
    assert api.get("cr2", "/api/v1/commission/clawback").json()["totals"] == {"refunds": "20.00", "clawback": "-8.00"}
    assert api.get("admin", "/api/v1/commission/clawback").json()["totals"]["clawback"] == "-23.50"
    assert api.get("admin", "/api/v1/commission/clawback", creator_id="cr2").json()["totals"]["clawback"] == "-8.00"
    assert api.get("cr1", "/api/v1/commission/clawback", creator_id="cr2").status_code == 403
    assert api.get("buyer", "/api/v1/commission/clawback").status_code == 403


MINE = [
    ("GET", "/api/v1/statements"),
    ("GET", "/api/v1/statements/{statement_id}"),
    ("GET", "/api/v1/statements/{statement_id}/orders"),
    ("POST", "/api/v1/statements/close"),
    ("GET", "/api/v1/commission/clawback"),
]


def test_every_route_of_this_module_needs_a_valid_token(api: Any) -> None:
    routes = {
        (m, p) for m, p in iter_routes(api.http.app) if p.startswith(("/api/v1/statements", "/api/v1/commission/"))
    }
    assert routes == set(MINE)  # these tests cover each of them
    for method, path in MINE:
        url = path.replace("{statement_id}", api.ids("cr1")["2026-10"])
        for header in (None, "Bearer", "Bearer nope", "Basic abc", "Bearer rr_123_wrong"):
            headers = {"Authorization": header} if header else {}
            r = api.http.request(method, url, headers=headers, json={"period": "2026-11"} if method == "POST" else None)
            assert r.status_code == 401, (method, path, header, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
