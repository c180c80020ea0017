"""Issue 12 reports on the embedded ClickHouse: cohort matrix, curve, period comparison, funnel, pivots, exports.

The data is SPEC's worked example plus a funnel for cA on 11-02 and a second cA
cohort on 11-04; ``as_of`` stays the example's refund, 2026-11-04T10:00+08:00,
so the 11-02 cohorts are final through D1 and the 11-04 cohort nowhere.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from attribution import testing as kit
from attribution.policy import Policy
from reelroi.api.app import Store, create_app
from reelroi.replay import replay
from sinks.connection import connect
from sinks.schema import migrate
from sinks.tokens import create_token
from sinks.writer import ClickHouseSink

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"

INJECTION = '=HYPERLINK("http://x","ok")'
EXTRA = [
    # a later configuration of cA: a name a spreadsheet would run as a formula
    kit.campaign(
        ts="2026-10-02T00:00:00Z", campaign_id="cA", platform="douyin", drama_id="dr1", buyer_id="b1", name=INJECTION
    ),
    *(kit.impression(ts=f"2026-11-02T1{i}:00:00+08:00", campaign_id="cA", device_id=f"i{i}") for i in range(4)),
    kit.click(ts="2026-11-02T11:00:00+08:00", click_id="k5", device_id="i1", campaign_id="cA"),
    kit.click(ts="2026-11-02T12:00:00+08:00", click_id="k6", device_id="i2", campaign_id="cA"),
    kit.click(ts="2026-11-04T08:50:00+08:00", click_id="k7", device_id="d7", campaign_id="cA"),
    kit.redirect(ts="2026-11-04T09:00:00+08:00", user_id="u5", click_id="k7"),
    kit.payment(ts="2026-11-04T09:30:00+08:00", user_id="u5", order_id="o5", amount="5.00"),
    kit.spend(ts="2026-11-04T09:00:00+08:00", campaign_id="cA", period_start="2026-11-04T08:00:00+08:00", amount="40"),
]
LINES = [*(DATA / "spec_example.jsonl").read_bytes().splitlines(), *EXTRA]


@pytest.fixture(scope="module")
def api(chdb_dir: Path):  # type: ignore[no-untyped-def]
    client = connect(f"chdb://{chdb_dir}")
    db = f"mx_{uuid.uuid4().hex}"
    migrate(client, db)
    replay(ClickHouseSink(client, db), Policy(), [kit.records(LINES)])
    tokens = {"admin": create_token(client, db, "admin", "")[0], "b1": create_token(client, db, "buyer", "b1")[0]}
    test_client = TestClient(create_app(Store(client, db)))

    def get(path: str, who: str = "admin", status: int = 200, **params: str):  # type: ignore[no-untyped-def]
        response = test_client.get(path, params=params, headers={"Authorization": f"Bearer {tokens[who]}"})
        assert response.status_code == status, response.text
        return response

    yield get
    client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


META = {
    "currency": "CNY",
    "tz": "Asia/Shanghai",
    "click_window": "7d",
    "view_window": "1d",
    "as_of": "2026-11-04T10:00:00+08:00",
    "warning": None,
}


def test_matrix_cells_are_revenue_to_day_n_and_say_whether_final(api) -> None:  # type: ignore[no-untyped-def]
    body = api("/api/v1/roi/matrix", days="2,0,1,30").json()
    assert body["days"] == [0, 1, 2, 30] and body["group_by"] == "source" and body["meta"] == META
    keys = [(r["cohort_date"], r["source_id"]) for r in body["rows"]]
    assert keys == [("2026-11-02", "cA"), ("2026-11-02", "organic"), ("2026-11-02", "pB"), ("2026-11-04", "cA")]
    first = body["rows"][0]
    assert (first["source_kind"], first["spend"], first["new_users"]) == ("campaign", "80.00", 1)
    assert first["cells"] == [
        {"day": 0, "revenue": "30.00", "roi": "0.3750", "final": True},
        {"day": 1, "revenue": "30.00", "roi": "0.3750", "final": True},
        {"day": 2, "revenue": "20.00", "roi": "0.2500", "final": False},  # the refund is on D2
        {"day": 30, "revenue": "20.00", "roi": "0.2500", "final": False},
    ]
    assert body["rows"][2]["cells"][0] == {"day": 0, "revenue": "71.00", "roi": None, "final": True}
    assert [c["final"] for c in body["rows"][3]["cells"]] == [False] * 4
    assert body["rows"][3]["cells"][0]["revenue"] == "5.00" and body["rows"][3]["spend"] == "40.00"


def test_matrix_groups_filters_and_scoping(api) -> None:  # type: ignore[no-untyped-def]
    rows = api("/api/v1/roi/matrix", days="0", group_by="platform").json()["rows"]
    assert [(r["cohort_date"], r["platform"], r["cells"][0]["revenue"]) for r in rows] == [
        ("2026-11-02", "douyin", "30.00"),
        ("2026-11-02", "", "71.50"),
        ("2026-11-04", "douyin", "5.00"),
    ]
    rows = api("/api/v1/roi/matrix", days="0", group_by="campaign", **{"from": "2026-11-03"}).json()["rows"]
    assert [(r["source_id"], r["name"], r["buyer_id"]) for r in rows] == [("cA", INJECTION, "b1")]
    rows = api("/api/v1/roi/matrix", "b1", days="0,7", group_by="drama").json()["rows"]
    assert {r["drama_id"] for r in rows} == {"dr1"} and len(rows) == 2  # a buyer: campaigns only
    assert sum(float(r["cells"][1]["revenue"]) for r in rows) == 25.0


def test_curve_points_count_only_cohorts_final_there(api) -> None:  # type: ignore[no-untyped-def]
    body = api("/api/v1/roi/curve").json()
    assert body["spend"] == "120.00" and body["meta"] == META
    assert [(p["day"], p["offset"], p["cohorts"], p["spend"], p["revenue"], p["roi"]) for p in body["points"]] == [
        ("d0", 0, 1, "80.00", "101.50", "1.2688"),
        ("d1", 1, 1, "80.00", "101.50", "1.2688"),
        ("d3", 3, 0, "0.00", "0.00", None),
        ("d7", 7, 0, "0.00", "0.00", None),
        ("total", None, 2, "120.00", "96.50", "0.8042"),
    ]


def test_compare_puts_the_period_beside_the_one_before(api) -> None:  # type: ignore[no-untyped-def]
    body = api("/api/v1/roi/compare", period="day").json()  # to: as_of's local date, 11-04
    assert body["period"] == "day" and body["meta"] == META
    current, previous = body["current"], body["previous"]
    assert (current["from"], current["to"], previous["from"], previous["to"]) == (
        "2026-11-04",
        "2026-11-04",
        "2026-11-03",
        "2026-11-03",
    )
    assert (current["spend"], current["new_users"], current["revenue_total"], current["roi_d0"]) == (
        "40.00",
        1,
        "5.00",
        "0.1250",
    )
    assert current["unfinished"] == ["revenue_d0", "roi_d0", "revenue_d1", "revenue_d3", "revenue_d7", "roi_d7"]
    assert (previous["spend"], previous["new_users"], previous["roi_total"], previous["unfinished"]) == (
        "0.00",
        0,
        None,
        [],
    )
    week = api("/api/v1/roi/compare", period="week", to="2026-11-08").json()
    assert (week["current"]["from"], week["current"]["spend"], week["previous"]["to"]) == (
        "2026-11-02",
        "120.00",
        "2026-11-01",
    )
    month = api("/api/v1/roi/compare", period="month", to="2026-03-31").json()
    assert (month["current"]["from"], month["previous"]["from"], month["previous"]["to"]) == (
        "2026-03-01",
        "2026-02-01",
        "2026-02-28",
    )
    totals = api("/api/v1/roi").json()["totals"]
    assert set(month["current"]) == {"from", "to", *totals}


def test_funnel_columns_on_every_row_and_total(api) -> None:  # type: ignore[no-untyped-def]
    body = api("/api/v1/roi").json()
    assert body["meta"] == META
    row = next(r for r in body["rows"] if r["source_id"] == "cA" and r["cohort_date"] == "2026-11-02")
    funnel = {k: row[k] for k in ("impressions", "clicks", "ctr", "click_to_user", "cost_per_user", "payer_rate")}
    assert funnel == {
        "impressions": 4,
        "clicks": 2,  # k5 and k6 on 11-02; k1 was on 11-01
        "ctr": "0.5000",
        "click_to_user": "0.5000",
        "cost_per_user": "80.00",
        "payer_rate": "1.0000",
    }
    assert (row["cost_per_payer"], row["arpu"], row["arppu"]) == ("80.00", "20.00", "20.00")
    assert row["unfinished"] == ["revenue_d3", "revenue_d7", "roi_d7"]
    organic = next(r for r in body["rows"] if r["source_kind"] == "organic")
    assert (organic["clicks"], organic["ctr"], organic["cost_per_payer"], organic["arpu"]) == (0, None, None, "0.50")
    plan = next(r for r in body["rows"] if r["source_kind"] == "plan")
    assert (plan["clicks"], plan["click_to_user"], plan["arppu"]) == (1, "1.0000", "71.00")
    totals = body["totals"]
    # clicks: k5, k6 and k7 of cA and the plan's one
    assert (totals["impressions"], totals["clicks"], totals["new_users"], totals["payers"]) == (4, 4, 4, 3)
    assert (totals["cost_per_user"], totals["arpu"], totals["payer_rate"]) == ("30.00", "24.13", "0.7500")


def test_two_dimensional_pivots(api) -> None:  # type: ignore[no-untyped-def]
    rows = api("/api/v1/roi", group_by="date,campaign").json()["rows"]
    assert [(r["cohort_date"], r["source_id"], r["spend"]) for r in rows] == [
        ("2026-11-02", "cA", "80.00"),
        ("2026-11-02", "pB", "0.00"),  # then by revenue
        ("2026-11-02", "organic", "0.00"),
        ("2026-11-04", "cA", "40.00"),
    ]
    assert rows[0]["name"] == INJECTION and rows[0]["platform"] == "douyin"
    rows = api("/api/v1/roi", group_by="drama,platform").json()["rows"]
    assert [(r["drama_id"], r["platform"], r["spend"], r["new_users"]) for r in rows] == [
        ("dr1", "douyin", "120.00", 2),
        ("dr1", "", "0.00", 1),
        ("", "", "0.00", 1),
    ]
    # a sum reaching the 11-04 cohort is unfinished wherever that cohort is
    assert rows[0]["unfinished"] == ["revenue_d0", "roi_d0", "revenue_d1", "revenue_d3", "revenue_d7", "roi_d7"]
    assert rows[1]["unfinished"] == ["revenue_d3", "revenue_d7", "roi_d7"]
    by_campaign = api("/api/v1/roi", group_by="campaign").json()["rows"]
    assert [r["spend"] for r in by_campaign if r["source_id"] == "cA"] == ["120.00"]


@pytest.mark.parametrize("group", ["date,date", "source_date,drama", "date,campaign,drama", "weather", "date,"])
def test_bad_pivots_and_offsets_are_a_clear_400(api, group: str) -> None:  # type: ignore[no-untyped-def]
    body = api("/api/v1/roi", status=400, group_by=group).json()
    assert body["error"] == "bad request" and body["details"][0]["param"] == "group_by"
    for days in ("", "0,x", "-1", ",".join(map(str, range(40))), "9999"):
        body = api("/api/v1/roi/matrix", status=400, days=days).json()
        assert body["details"][0]["param"] == "days", days
    assert api("/api/v1/roi/matrix", status=400, group_by="buyer").json()["details"][0]["param"] == "group_by"
    assert api("/api/v1/roi/compare", status=400, period="year").json()["details"][0]["param"] == "period"
    assert api("/api/v1/roi/curve", "b1", status=403, source_kind="plan").status_code == 403


def test_csv_has_a_bom_on_request_and_the_policy(api) -> None:  # type: ignore[no-untyped-def]
    plain = api("/api/v1/roi", group_by="campaign", format="csv").content
    marked = api("/api/v1/roi", group_by="campaign", format="csv", bom="true").content
    assert not plain.startswith(b"\xef\xbb\xbf") and marked == b"\xef\xbb\xbf" + plain
    rows = list(csv.DictReader(io.StringIO(marked.decode("utf-8-sig"))))
    cA = next(r for r in rows if r["source_id"] == "cA")
    assert cA["name"] == "'" + INJECTION  # a spreadsheet shows it, never runs it
    assert (cA["currency"], cA["as_of"], cA["spend"], cA["ctr"]) == ("CNY", META["as_of"], "120.00", "0.7500")
    matrix = api("/api/v1/roi/matrix", days="0,2", format="csv").text
    first = next(csv.DictReader(io.StringIO(matrix)))
    assert (first["revenue_d0"], first["revenue_d2"], first["roi_d2"]) == ("30.00", "20.00", "0.2500")
    assert first["unfinished"] == "revenue_d2 roi_d2" and first["tz"] == "Asia/Shanghai"
    commission = next(csv.DictReader(io.StringIO(api("/api/v1/commission", format="csv").text)))
    assert (commission["commission"], commission["as_of"]) == ("21.30", META["as_of"])


def _sheet(content: bytes) -> tuple[list[str], list[list[object]], dict[str, object]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    report = list(book["report"].iter_rows(values_only=True))
    about = {str(k): v for k, v in book["about"].iter_rows(values_only=True)}
    return [str(n) for n in report[0]], [list(r) for r in report[1:]], about


def test_xlsx_cells_are_typed_and_safe(api) -> None:  # type: ignore[no-untyped-def]
    response = api("/api/v1/roi", group_by="date,campaign", format="xlsx")
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="reelroi-roi-date-campaign.xlsx"' in response.headers["content-disposition"]
    names, rows, about = _sheet(response.content)
    first = dict(zip(names, rows[0], strict=True))
    assert first["cohort_date"].date().isoformat() == "2026-11-02"  # type: ignore[attr-defined]
    assert first["spend"] == 80 and first["roi_d0"] == 0.375 and first["new_users"] == 1 and first["impressions"] == 4
    assert first["roi_d7"] == 0.25 and first["unfinished"] == "revenue_d3 revenue_d7 roi_d7"
    assert first["name"] == "'" + INJECTION and first["as_of"] == META["as_of"]
    assert about["currency"] == "CNY" and about["as_of"] == META["as_of"] and "amounts in CNY" in str(about["heading"])
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert all(c.data_type != "f" for row in book["report"].iter_rows() for c in row)
    names, rows, _ = _sheet(api("/api/v1/roi/matrix", days="0,1", format="xlsx").content)
    assert (
        names[:4] == ["source_kind", "source_id", "cohort_date", "spend"] and rows[0][names.index("revenue_d1")] == 30
    )
    names, rows, _ = _sheet(api("/api/v1/commission", format="xlsx").content)
    assert rows[0][names.index("commission")] == 21.3


def test_cli_matrix_pivot_funnel_columns_and_files(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store.replay(LINES)
    matrix = store.roi("--matrix", "--days", "0,2")
    first = matrix[0]
    assert (first["cohort_date"], first["source_id"], first["revenue_d0"], first["revenue_d2"]) == (
        "2026-11-02",
        "cA",
        "30.00",
        "20.00",
    )
    assert matrix[0]["unfinished"] == ["revenue_d2", "roi_d2"]
    pivot = store.roi("--group-by", "date,campaign", "--funnel")
    assert (pivot[0]["source_id"], pivot[0]["impressions"], pivot[0]["ctr"]) == ("cA", 4, "0.5000")
    chosen = store.roi("--columns", "source_id,roi_d7")
    assert chosen[0] == {"source_id": "cA", "roi_d7": "0.2500", "unfinished": ["revenue_d3", "revenue_d7", "roi_d7"]}
    code, out, err = store.run("roi", "--db", store.dsn, "--columns", "nope")
    assert code != 0 and "no column nope" in err
    code, out, err = store.run("roi", "--db", store.dsn, "--group-by", "date,weather")
    assert code != 0 and "--group-by" in err
    out_file = tmp_path / "roi.xlsx"
    code, _, err = store.run("roi", "--db", store.dsn, "--format", "xlsx", "--out", str(out_file), "--matrix")
    assert code == 0 and "wrote" in err
    names, rows, about = _sheet(out_file.read_bytes())
    assert rows[0][names.index("revenue_d0")] == 30 and about["as_of"] == META["as_of"]
    code, out, _ = store.run("commission", "--db", store.dsn, "--format", "csv", "--bom")
    assert out.startswith("\ufeffcreator_id,")
    code, _, err = store.run("roi", "--db", store.dsn, "--format", "xlsx")
    assert code != 0 and "--out" in err


def test_cli_table_fits_the_width_it_is_given(store) -> None:  # type: ignore[no-untyped-def]
    store.replay(LINES)
    code, out, _ = store.run("roi", "--db", store.dsn, "--funnel", "--width", "120")
    assert code == 0
    _, *table = out.splitlines()
    body = [ln for ln in table if ln and "not final" not in ln]
    assert max(len(ln) for ln in body) <= 120
    blocks = "\n".join(table).split("\n\n")
    assert len(blocks) >= 2 and all(b.lstrip().startswith("source_kind") for b in blocks[:-1])
    assert "20.00*" in out  # unfinished figures stay marked in every block
    code, wide, _ = store.run("roi", "--db", store.dsn, "--funnel", "--width", "0")
    assert len(wide.split("\n\n")) == 1 and max(len(ln) for ln in wide.splitlines()[1:]) > 120
    assert json.loads(store.run("roi", "--db", store.dsn, "--format", "json")[1])[0]["source_id"] == "cA"
