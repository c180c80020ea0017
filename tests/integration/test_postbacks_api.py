"""The postback ledger over HTTP (reelroi/api/postbacks.py) on the embedded ClickHouse.

SPEC 7: 扣量 is visible to admins and to the campaign's buyer, and nowhere else.
An admin sees every campaign's rows; a buyer only its own, whatever the
parameters (another buyer's campaign is absent from the list, the summary and
the downloads); creators and producers get 403. The answers are the rows
``reelroi postbacks`` prints (tests/postback_ledger.py's world).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attribution.policy import Policy
from reelroi.api.app import Store, create_app, iter_routes
from reelroi.replay import replay
from sinks.connection import command, connect
from sinks.schema import migrate
from sinks.tokens import create_token
from sinks.writer import ClickHouseSink
from tests import postback_ledger as world

pytestmark = pytest.mark.integration

PATHS = ("/api/v1/postbacks", "/api/v1/postbacks/summary")


@pytest.fixture(scope="module")
def api(chdb_dir: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    client = connect(f"chdb://{chdb_dir}")
    db = f"pba_{uuid.uuid4().hex}"
    migrate(client, db)
    replay(ClickHouseSink(client, db), Policy(), [world.kit.records(world.events())])
    world.write_ledger(client, db)
    tokens = {
        "admin": create_token(client, db, "admin", "")[0],
        "bA": create_token(client, db, "buyer", "bA")[0],
        "bB": create_token(client, db, "buyer", "bB")[0],
        "nobody": create_token(client, db, "buyer", "b-without-campaigns")[0],
        "creator": create_token(client, db, "creator", "cr1")[0],
        "producer": create_token(client, db, "producer", "")[0],
    }
    yield TestClient(create_app(Store(client, db))), tokens
    command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def get(api: tuple[TestClient, dict[str, str]], who: str | None, path: str, **params: str) -> Any:
    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
    return client.get(path, params=params, headers=headers)


def campaigns(answer: Any) -> set[str]:
    return {r["campaign_id"] for r in answer.json()["rows"]}


def test_these_are_the_ledger_routes(api: Any) -> None:
    assert {p for _, p in iter_routes(api[0].app) if p.startswith("/api/v1/postbacks")} == set(PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc"])
def test_no_or_bad_token_is_401(api: Any, path: str, header: str | None) -> None:
    response = api[0].get(path, headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and "error" in response.json()


def test_admin_sees_every_campaign_and_every_status(api: Any) -> None:
    body = get(api, "admin", "/api/v1/postbacks").json()
    assert {r["campaign_id"] for r in body["rows"]} == {"cA1", "cA2", "cB1"} and len(body["rows"]) == 12
    assert {r["status"] for r in body["rows"]} == {
        "sent", "sending", "pending", "failed", "held_kind", "held_min_amount", "held_ratio", "superseded",
    }  # fmt: skip
    assert body["meta"]["as_of"] == "2026-11-02T10:00:00+08:00" and body["limit"] == 200
    held = [r for r in body["rows"] if r["status"] == "held_ratio" and r["campaign_id"] == "cA1"]
    assert [(r["order_id"], r["amount"], r["detail"]) for r in held] == [("o2", "50.00", "ratio 0.5: not in the share")]
    summary = get(api, "admin", "/api/v1/postbacks/summary").json()
    rows = {r["campaign_id"]: r for r in summary["rows"]}
    for campaign, want in world.EXPECTED.items():
        assert {k: rows[campaign][k] for k in want} == want, campaign
    assert summary["totals"]["activations"] == 6 and summary["totals"]["held_ratio"] == 2
    assert summary["totals"]["sent_pay_value"] == "90.00" and summary["meta"]["currency"] == "CNY"
    assert campaigns(get(api, "admin", "/api/v1/postbacks/summary", buyer_id="bB")) == {"cB1"}
    assert campaigns(get(api, "admin", "/api/v1/postbacks", buyer_id="bA")) == {"cA1", "cA2"}


def test_a_buyer_sees_only_its_own_campaigns_whatever_the_parameters(api: Any) -> None:
    for path in PATHS:
        assert campaigns(get(api, "bA", path)) == {"cA1", "cA2"}
        assert campaigns(get(api, "bB", path)) == {"cB1"}
        assert campaigns(get(api, "nobody", path)) == set()
        assert get(api, "bA", path, campaign_id="cB1").json()["rows"] == []  # asked by id: nothing, not their rows
        assert get(api, "bA", path, buyer_id="bB").status_code == 403
        assert get(api, "bA", path, buyer_id="bA").status_code == 200
        download = get(api, "bA", path, format="csv").text
        assert "cB1" not in download and "cA1" in download
    summary = get(api, "bA", "/api/v1/postbacks/summary").json()
    assert summary["totals"]["activations"] == 5 and summary["totals"]["held_ratio"] == 1  # cB1's not counted
    rows = {r["campaign_id"]: r for r in summary["rows"]}
    assert {k: rows["cA1"][k] for k in world.EXPECTED["cA1"]} == world.EXPECTED["cA1"]
    for params in ({"status": "held_ratio"}, {"kind": "pay"}, {"since": "2026-11-02"}, {"limit": "5000"}):
        assert campaigns(get(api, "bB", "/api/v1/postbacks", **params)) <= {"cB1"}


@pytest.mark.parametrize("who", ["creator", "producer"])
def test_creators_and_producers_get_403(api: Any, who: str) -> None:
    for path in PATHS:
        response = get(api, who, path)
        assert response.status_code == 403 and "cA1" not in response.text
        assert get(api, who, path, format="csv").status_code == 403


def test_filters_and_the_csv_download(api: Any) -> None:
    rows = get(api, "admin", "/api/v1/postbacks", status="pending").json()["rows"]
    assert [(r["campaign_id"], r["user_id"], r["attempts"], r["last_attempt_at"]) for r in rows] == [
        ("cA1", "u3", 0, None)
    ]
    rows = get(api, "admin", "/api/v1/postbacks", kind="pay", since="2026-11-02T10:00:00+08:00").json()["rows"]
    assert sorted(r["order_id"] for r in rows) == ["o1", "o2", "o3", "o4", "o6"]
    assert get(api, "admin", "/api/v1/postbacks", since="2026-11-02T10:00:01").json()["rows"] == []  # local time
    assert len(get(api, "admin", "/api/v1/postbacks", limit="2").json()["rows"]) == 2
    response = get(api, "admin", "/api/v1/postbacks", format="csv", bom="true")
    assert response.headers["content-disposition"] == 'attachment; filename="reelroi-postbacks.csv"'
    parsed = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(parsed) == 12 and parsed[0]["as_of"] == "2026-11-02T10:00:00+08:00"
    assert {r["name"] for r in parsed if r["campaign_id"] == "cA2"} == {'\'=HYPERLINK("x")'}  # never a formula


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"kind": "refund"},
        {"since": "yesterday"},
        {"since": "2026-13-45"},
        {"limit": "5001"},
        {"campaign_id": "x" * 5000},
        {"format": "xlsx"},
    ],
)
def test_hostile_parameters_get_a_clear_400(api: Any, params: dict[str, str]) -> None:
    response = get(api, "admin", "/api/v1/postbacks", **params)
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["param"] in params


def test_sql_looking_values_are_only_bound_parameters(api: Any) -> None:
    for value in ("cA1' OR '1'='1", "{p_buyer:String}", "') UNION SELECT * FROM tokens --"):
        assert get(api, "admin", "/api/v1/postbacks", campaign_id=value).json()["rows"] == []
        assert get(api, "admin", "/api/v1/postbacks/summary", buyer_id=value).json()["rows"] == []
    assert len(get(api, "admin", "/api/v1/postbacks").json()["rows"]) == 12
