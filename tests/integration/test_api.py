"""The HTTP API on the embedded ClickHouse: scoping, tokens, hostile input, OpenAPI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attribution import testing as kit
from attribution.policy import Policy
from reelroi.api.app import Store, create_app, iter_routes
from reelroi.replay import replay
from sinks.connection import connect
from sinks.schema import migrate
from sinks.tokens import create_token, list_tokens, revoke_token
from sinks.writer import ClickHouseSink

pytestmark = pytest.mark.integration

EVENTS = [
    kit.campaign(campaign_id="cA1", buyer_id="bA", platform="douyin", drama_id="dr1"),
    kit.campaign(campaign_id="cA2", buyer_id="bA", platform="kuaishou", drama_id="dr2"),
    kit.campaign(campaign_id="cB1", buyer_id="bB", platform="tiktok", drama_id="dr1"),
    kit.plan(plan_id="p1", creator_id="crX", commission_rate="0.3"),
    kit.plan(plan_id="p2", creator_id="crY", commission_rate="0.5"),
    kit.spend(campaign_id="cA1", amount="100"),
    kit.spend(campaign_id="cA2", amount="50"),
    kit.spend(campaign_id="cB1", amount="70"),
]
for i, (source, user) in enumerate(
    [
        ({"campaign_id": "cA1"}, "u1"),
        ({"campaign_id": "cB1"}, "u2"),
        ({"plan_id": "p1"}, "u3"),
        ({"plan_id": "p2"}, "u4"),
    ]
):
    EVENTS += [
        kit.click(ts="2026-11-02T09:00:00+08:00", click_id=f"k{i}", device_id=f"d{i}", **source),
        kit.redirect(ts="2026-11-02T09:05:00+08:00", user_id=user, click_id=f"k{i}"),
        kit.payment(ts="2026-11-02T10:00:00+08:00", user_id=user, order_id=f"o{i}", amount=str(10 * (i + 1))),
    ]
EVENTS.append(b"not json at all")


@pytest.fixture(scope="module")
def api(chdb_dir: Path) -> tuple[TestClient, dict[str, str], Store]:
    client = connect(f"chdb://{chdb_dir}")
    db = f"api_{uuid.uuid4().hex}"
    migrate(client, db)
    replay(ClickHouseSink(client, db), Policy(), [kit.records(EVENTS)])
    tokens = {
        "admin": create_token(client, db, "admin", "")[0],
        "buyerA": create_token(client, db, "buyer", "bA")[0],
        "buyerB": create_token(client, db, "buyer", "bB")[0],
        "creatorX": create_token(client, db, "creator", "crX")[0],
        "creatorY": create_token(client, db, "creator", "crY")[0],
    }
    store = Store(client, db)
    return TestClient(create_app(store)), tokens, store


def get(api, who: str | None, path: str, **params):  # type: ignore[no-untyped-def]
    client, tokens, _ = api
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
    return client.get(path, params=params, headers=headers)


API_PATHS = [
    "/api/v1/me",
    "/api/v1/roi",
    "/api/v1/roi/matrix",
    "/api/v1/roi/curve",
    "/api/v1/roi/compare",
    "/api/v1/commission",
    "/api/v1/rejections",
]
# routes whose access rules are tested beside them (tests/integration/test_statements_api.py,
# test_postbacks_api.py)
ELSEWHERE = ("/api/v1/statements", "/api/v1/commission/clawback", "/api/v1/postbacks")


def test_every_api_route_is_covered_by_these_tests(api) -> None:  # type: ignore[no-untyped-def]
    client = api[0]
    paths = {path for _, path in iter_routes(client.app)}
    assert sorted(p for p in paths if not p.startswith(ELSEWHERE)) == sorted(API_PATHS)


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer rr_123_wrong"])
def test_no_or_bad_token_is_401_on_every_route(api, path: str, header: str | None) -> None:  # type: ignore[no-untyped-def]
    client = api[0]
    response = client.get(path, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert "error" in response.json()


def test_buyer_sees_only_own_campaigns_whatever_the_parameters(api) -> None:  # type: ignore[no-untyped-def]
    rows = get(api, "buyerA", "/api/v1/roi", group_by="campaign").json()["rows"]
    assert {r["source_id"] for r in rows} == {"cA1", "cA2"}
    assert {r["buyer_id"] for r in rows} == {"bA"}
    for params in ({"buyer_id": "bB"}, {"source_kind": "plan"}, {"source_kind": "organic"}):
        assert get(api, "buyerA", "/api/v1/roi", **params).status_code == 403
        assert get(api, "buyerA", "/api/v1/roi/curve", **params).status_code == 403
    # asking for another buyer's campaign by id yields nothing, not their numbers
    assert get(api, "buyerA", "/api/v1/roi", source_id="cB1").json()["rows"] == []
    for group in ("source_date", "source", "campaign", "drama", "platform", "buyer", "date"):
        totals = get(api, "buyerA", "/api/v1/roi", group_by=group).json()["totals"]
        assert totals["spend"] == "150.00" and totals["revenue_total"] == "10.00"
    csv_text = get(api, "buyerA", "/api/v1/roi", group_by="campaign", format="csv").text
    assert "cB1" not in csv_text and "cA1" in csv_text
    assert get(api, "buyerB", "/api/v1/roi/curve").json()["spend"] == "70.00"
    assert get(api, "buyerA", "/api/v1/commission").status_code == 403
    assert get(api, "buyerA", "/api/v1/rejections").status_code == 403


def test_creator_never_reads_another_creators_numbers(api) -> None:  # type: ignore[no-untyped-def]
    body = get(api, "creatorX", "/api/v1/commission").json()
    assert {r["creator_id"] for r in body["rows"]} == {"crX"}
    assert body["totals"] == {"gross": "30.00", "refunds": "0.00", "net": "30.00", "commission": "9.00"}
    assert get(api, "creatorX", "/api/v1/commission", creator_id="crY").status_code == 403
    assert get(api, "creatorX", "/api/v1/commission", plan_id="p2").json()["rows"] == []
    for group in ("detail", "plan", "day"):
        rows = get(api, "creatorX", "/api/v1/commission", group_by=group).json()["rows"]
        assert all(r.get("creator_id", "crX") == "crX" for r in rows)
        assert sum(float(r["commission"]) for r in rows) == 9.0
    assert "crY" not in get(api, "creatorX", "/api/v1/commission", format="csv").text
    assert get(api, "creatorX", "/api/v1/roi").status_code == 403
    assert get(api, "creatorX", "/api/v1/roi/curve").status_code == 403
    assert get(api, "creatorX", "/api/v1/rejections").status_code == 403


def test_admin_sees_everything_including_rejections(api) -> None:  # type: ignore[no-untyped-def]
    rows = get(api, "admin", "/api/v1/roi", group_by="source").json()["rows"]
    assert {r["source_id"] for r in rows} == {"cA1", "cA2", "cB1", "p1", "p2"}
    assert {r["creator_id"] for r in get(api, "admin", "/api/v1/commission").json()["rows"]} == {"crX", "crY"}
    rejected = get(api, "admin", "/api/v1/rejections").json()
    assert rejected["rejected"] == {"invalid_json": 1}
    assert rejected["recent"][0]["raw"] == "not json at all"
    assert get(api, "admin", "/api/v1/me").json()["role"] == "admin"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-01' OR 1=1 --"},
        {"to": "tomorrow"},
        {"source_id": "x" * 5000},
        {"drama_id": "a\x00b"},
        {"platform": "douyin'; DROP TABLE money; --"},
        {"group_by": "source_id; DROP TABLE users"},
        {"format": "xml"},
        {"source_kind": "campaign OR 1=1"},
    ],
)
def test_hostile_filters_get_a_clear_400(api, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    response = get(api, "admin", "/api/v1/roi", **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad request" and body["details"][0]["param"] in params


def test_sql_looking_values_are_only_ever_bound_parameters(api) -> None:  # type: ignore[no-untyped-def]
    for value in ("cA1' OR '1'='1", "cA1\\' --", "{p_kind:String}", "') UNION SELECT * FROM tokens --"):
        response = get(api, "admin", "/api/v1/roi", source_id=value)
        assert response.status_code == 200 and response.json()["rows"] == []
    assert get(api, "creatorX", "/api/v1/commission", plan_id="p1' OR '1'='1").json()["rows"] == []
    assert len(get(api, "admin", "/api/v1/roi", group_by="source").json()["rows"]) == 5  # tables intact


def test_revoked_tokens_stop_working_and_secrets_are_not_stored(api) -> None:  # type: ignore[no-untyped-def]
    client, _, store = api
    token, info = create_token(store.client, store.db, "buyer", "bA")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    stored = store.client.query(f"SELECT * FROM {store.db}.tokens FINAL").result_rows
    assert all(token.split("_", 2)[2] not in str(row) for row in stored)
    assert revoke_token(store.client, store.db, info.token_id)
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert any(t.token_id == info.token_id and t.revoked for t in list_tokens(store.client, store.db))


def test_openapi_describes_every_route_and_parameter(api) -> None:  # type: ignore[no-untyped-def]
    client = api[0]
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert sorted(p for p in spec["paths"] if not p.startswith(ELSEWHERE)) == sorted(API_PATHS)
    roi_params = {p["name"] for p in spec["paths"]["/api/v1/roi"]["get"]["parameters"]}
    assert {
        "from",
        "to",
        "platform",
        "drama_id",
        "buyer_id",
        "source_kind",
        "source_id",
        "group_by",
        "format",
    } <= roi_params
    commission_params = {p["name"] for p in spec["paths"]["/api/v1/commission"]["get"]["parameters"]}
    assert {"from", "to", "plan_id", "creator_id", "group_by", "format"} <= commission_params


BUSINESS_SERIES = ("reelroi_campaign_spend_today", "reelroi_revenue_attributed", "reelroi_users", "reelroi_watcher_")


def test_metrics_are_open_but_carry_no_business_series(api) -> None:  # type: ignore[no-untyped-def]
    from streams.watcher import Watcher, WatchSettings

    client, _, store = api
    Watcher(store.client, store.db, Policy(), store.lock, WatchSettings()).refresh()  # what serve's thread does
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "reelroi_events_consumed" in response.text  # pipeline series stay open to the scraper
    assert not [name for name in BUSINESS_SERIES if name in response.text]
    assert client.get("/metrics/business").status_code == 404  # no token configured: not served at all


def test_business_metrics_need_the_metrics_token(api) -> None:  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    from streams.watcher import Watcher, WatchSettings

    _, tokens, store = api
    Watcher(store.client, store.db, Policy(), store.lock, WatchSettings()).refresh()
    client = TestClient(create_app(store, metrics_token=SecretStr("m-s3cret")))
    for header in (None, "Bearer", "Bearer wrong", "Basic m-s3cret", "Bearer m-s3cre", f"Bearer {tokens['admin']}"):
        response = client.get("/metrics/business", headers={"Authorization": header} if header else {})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "reelroi_" not in response.text
    response = client.get("/metrics/business", headers={"Authorization": "Bearer m-s3cret"})
    assert response.status_code == 200
    assert 'reelroi_users{touch="' in response.text
    assert 'reelroi_revenue_attributed{platform="douyin",source_kind="campaign"} 10.0' in response.text
    assert "reelroi_watcher_last_success_timestamp_seconds" in response.text
    assert "reelroi_events_consumed" not in response.text  # each series on one path only
    assert not [name for name in BUSINESS_SERIES if name in client.get("/metrics").text]


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def every_get_url(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Every GET route of the app, and every file under /static."""
    from reelroi.api.app import WEB, all_routes

    urls = [r.path for r in all_routes(app) if "GET" in (getattr(r, "methods", None) or ())]
    urls += [f"/static/{f.name}" for f in sorted((WEB / "static").iterdir())]
    return urls


def assert_hardened(response, url: str) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (url, name)
    policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'", url
    assert "unsafe-inline" not in response.headers["content-security-policy"], url
    if url.startswith("/api/"):
        assert response.headers["cache-control"] == "no-store", url


def test_every_page_and_route_sends_the_security_headers_and_answers_head(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, _ = api
    urls = every_get_url(client.app)
    assert {"/", "/buyer", "/creator", "/healthz", "/metrics", "/openapi.json", "/static/app.js"} <= set(urls)
    assert set(API_PATHS) <= set(urls)
    for url in urls:
        for auth in ({}, {"Authorization": f"Bearer {tokens['admin']}"}):  # 401 answers are hardened too
            got = client.get(url, headers=auth)
            head = client.head(url, headers=auth)
            assert_hardened(got, url)
            assert_hardened(head, url)
            assert head.status_code == got.status_code != 405, url
            assert head.content == b"", url
            assert head.headers["content-type"] == got.headers["content-type"], url
    for url in ("/nowhere", "/static/missing.js"):
        assert_hardened(client.get(url), url)


def test_no_docs_page_loads_code_from_a_cdn(api) -> None:  # type: ignore[no-untyped-def]
    client = api[0]
    for url in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client.get(url).status_code == 404, url
    assert client.get("/openapi.json").json()["info"]["title"] == "reelroi"
