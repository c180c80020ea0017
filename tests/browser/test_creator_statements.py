"""The creator page's clawback, policy line and statements (分账), in headless Chromium.

The statements of the generated data's first month are closed through the API
(as an admin would), then the page must show what the API answers: the
clawback card is the commission refunds took back (not the refunded sales),
the statements list is the token's own, and a statement opens to its lines
and orders, with the API's CSV as the download. The strict CSP holds throughout.

A second server (``settled``) holds a small hand-made history: October closed,
then a late payment and refunds dated in October arrive and November is
closed, so its statement carries an adjustment line for October. Its figures
are known exactly (the same as tests/integration/test_statements_api.py).

Screenshot: docs/screenshots/creator-statement.png (November's statement opened).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    pytest.skip("browser tests need /usr/bin/chromium and /usr/bin/chromedriver", allow_module_level=True)

pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (pip install -e '.[dev]')")
from pages_kit import Site, _cli, open_as, serving  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from attribution import testing as kit  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.effectiveDirective + ' ' + (e.blockedURI || '')));
"""
ROWS = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr:not(.empty)')).map(tr => {
  const values = {}, texts = {};
  tr.querySelectorAll('td').forEach(td => { values[td.dataset.col] = td.dataset.value; texts[td.dataset.col] = td.innerText; });
  return {attrs: Object.fromEntries(Array.from(tr.attributes).map(a => [a.name, a.value])), values, texts};
});
"""
CHART = """
const chart = echarts.getInstanceByDom(document.getElementById(arguments[0]));
if (!chart) return null;
const opt = chart.getOption();
return {labels: opt.xAxis[0].data, series: Object.fromEntries(opt.series.map(s => [s.id, s.data]))};
"""


OCTOBER = [
    kit.plan(plan_id="pB", creator_id="cr1", drama_id="dr1", commission_rate="0.3", ts="2026-10-01T00:00:00Z"),
    kit.plan(plan_id="pC", creator_id="cr1", drama_id="dr2", commission_rate="0.2", ts="2026-10-01T00:00:00Z"),
    *kit.plan_user("u1", "pB", "2026-10-05"),
    kit.pay("o1", "u1", "2026-10-05T10:00:00+08:00", "100"),
    *kit.plan_user("u2", "pC", "2026-10-10"),
    kit.pay("o2", "u2", "2026-10-10T10:00:00+08:00", "50", "dr2"),
    kit.refund(event_id="r-o2", order_id="o2", ts="2026-10-12T10:00:00+08:00", amount="10"),
    kit.pay("o4", "u1", "2026-11-01T00:30:00+08:00", "20"),  # the data's clock is past October
]
LATER = [
    kit.pay("o5", "u1", "2026-10-20T10:00:00+08:00", "30"),  # October, arriving after it was closed
    kit.refund(event_id="r-o1", order_id="o1", ts="2026-10-25T10:00:00+08:00", amount="40"),
    kit.pay("o6", "u2", "2026-11-05T10:00:00+08:00", "60", "dr2"),
    kit.refund(event_id="r-o4", order_id="o4", ts="2026-11-10T10:00:00+08:00", amount="5"),
    kit.ad_unlock(event_id="iaa-dec", user_id="u1", ts="2026-12-01T01:00:00+08:00"),  # the clock past November
]


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """October closed, late October money and November's, November closed; a token for creator cr1."""
    work = tmp_path_factory.mktemp("settled")
    dsn = f"chdb://{work / 'db'}"
    first, both = work / "october.jsonl", work / "all.jsonl"
    first.write_bytes(b"\n".join(OCTOBER) + b"\n")
    both.write_bytes(b"\n".join([*OCTOBER, *LATER]) + b"\n")
    _cli("replay", str(first), "--db", dsn, cwd=work)
    _cli("statements", "close", "--period", "2026-10", "--db", dsn, cwd=work)
    _cli("replay", str(both), "--db", dsn, cwd=work)
    _cli("statements", "close", "--period", "2026-11", "--db", dsn, cwd=work)
    token = _cli("token", "create", "--db", dsn, "--role", "creator", "--subject", "cr1", cwd=work).strip()
    with serving(dsn, work) as base:
        yield Site(base, {"cr1": token}, "", ["cr1"])


def post(site: Site, who: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(
        site.base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {site.tokens[who]}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def closed(site: Site) -> dict[str, Any]:
    """The generated data's first month closed for every creator (forced: the month may not have ended)."""
    first = site.api("admin", "/api/v1/commission", group_by="day")["rows"][0]["date"]
    status, body = post(site, "admin", "/api/v1/statements/close", {"period": first[:7], "force": True})
    assert status in (200, 409), body  # 409: an earlier module of this session closed it already
    statements = site.api("admin", "/api/v1/statements")["statements"]
    assert {s["creator_id"] for s in statements} >= set(site.creators), statements
    return {"period": first[:7], "statements": statements}


def rows(driver: Any, table_id: str) -> list[dict[str, Any]]:
    """Each body row of a table: its attributes, and per column the cell's data-value and text."""
    found: list[dict[str, Any]] = driver.execute_script(ROWS, table_id)
    return found


def wait_statements(driver: Any) -> None:
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-statements-loaded")
    )
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-statements-loaded") != "error"


def open_statement(driver: Any, statement_id: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#statement-list button[data-open="{statement_id}"]').click()
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "statement-detail").get_attribute("data-statement") == statement_id
    )


def number(text: str) -> str:
    return text.strip().replace(",", "").replace("\u2212", "-")


@pytest.mark.parametrize("who", ["admin", "creator0"])
def test_clawback_card_and_red_bars_are_the_commission_taken_back(site: Site, browser: Any, who: str) -> None:
    open_as(site, browser, who, "/creator")
    clawback = site.api(who, "/api/v1/commission/clawback")
    commission = site.api(who, "/api/v1/commission", group_by="day")
    refunds = Decimal(commission["totals"]["refunds"])
    taken = Decimal(clawback["totals"]["clawback"])
    if who == "creator0" and refunds == 0:  # the generated data refunds another creator's orders only
        card = browser.find_element(By.CSS_SELECTOR, "#card-clawback .value")
        assert (card.get_attribute("data-value"), number(card.text)) == ("0.00", "0.00")
        return
    assert refunds > 0, "the generated data should refund some orders of a plan"
    assert clawback["totals"]["refunds"] == commission["totals"]["refunds"]
    assert 0 < -taken < refunds  # rates below 100%: less commission comes back than sales were refunded

    card = browser.find_element(By.ID, "card-clawback")
    assert card.find_element(By.CSS_SELECTOR, ".value").get_attribute("data-value") == clawback["totals"]["clawback"]
    assert number(card.find_element(By.CSS_SELECTOR, ".value").text) == clawback["totals"]["clawback"]
    assert number(card.find_element(By.CSS_SELECTOR, ".meta b").text) == commission["totals"]["refunds"]
    assert number(card.find_element(By.CSS_SELECTOR, ".value").text) != "-" + commission["totals"]["refunds"]
    assert card.find_element(By.CSS_SELECTOR, ".label").text.strip() == "退款扣回佣金"

    drawn = browser.execute_script(CHART, "chart-commission")
    assert drawn["labels"] == [r["date"] for r in commission["rows"]]
    back = {r["date"]: Decimal(r["clawback"]) for r in clawback["rows"]}
    assert [Decimal(str(v)) for v in drawn["series"]["clawback"]] == [back.get(d, Decimal(0)) for d in drawn["labels"]]
    assert [Decimal(str(v)) for v in drawn["series"]["commission"]] == [
        Decimal(r["commission"]) for r in commission["rows"]
    ]

    meta = browser.find_element(By.ID, "report-meta")
    me = site.api(who, "/api/v1/me")
    assert meta.get_attribute("data-currency") == me["currency"] and meta.get_attribute("data-tz") == me["tz"]
    policy = commission.get("meta")
    if policy:  # the policy and as_of of the report, once the API states them
        for key in ("currency", "tz", "click_window", "view_window", "as_of"):
            assert (meta.get_attribute("data-" + key.replace("_", "-")) or None) == policy[key], key


def test_statements_list_lines_and_orders_equal_the_api(site: Site, browser: Any, closed: dict[str, Any]) -> None:
    open_as(site, browser, "creator0", "/creator")
    wait_statements(browser)
    mine = site.api("creator0", "/api/v1/statements")["statements"]
    assert mine and {s["creator_id"] for s in mine} == {site.creators[0]}
    listed = rows(browser, "statement-list")
    assert [r["attrs"]["data-statement"] for r in listed] == [s["statement_id"] for s in mine]
    for row, s in zip(listed, mine, strict=True):
        for col in ("gross", "refunds", "net", "commission", "currency", "closed_at"):
            assert row["values"][col] == str(s[col]), col
    assert site.creators[1] not in browser.find_element(By.ID, "statements-panel").text

    sid = mine[0]["statement_id"]
    open_statement(browser, sid)
    shown = site.api("creator0", f"/api/v1/statements/{sid}")
    lines = rows(browser, "statement-lines")
    assert [int(r["attrs"]["data-line"]) for r in lines] == [x["line_no"] for x in shown["lines"]]
    for row, line in zip(lines, shown["lines"], strict=True):
        for col in ("period", "plan_id", "drama_id", "commission_rate", "gross", "refunds", "net", "commission"):
            assert row["values"][col] == ("" if line[col] is None else str(line[col])), (line["line_no"], col)
        assert row["attrs"]["data-kind"] == line["kind"]
        if line["commission_rate"] is not None:
            assert row["texts"]["commission_rate"].endswith("%")
    total = browser.find_element(By.CSS_SELECTOR, '#statement-lines tfoot td[data-col="commission"]')
    assert total.get_attribute("data-value") == shown["statement"]["commission"]
    facts = browser.find_element(By.ID, "statement-facts").text
    for fact in (shown["statement"]["period"], shown["statement"]["currency"], shown["statement"]["tz"]):
        assert fact in facts

    orders = site.api("creator0", f"/api/v1/statements/{sid}/orders")["orders"]
    got = rows(browser, "statement-orders")
    assert [(r["attrs"]["data-line"], r["attrs"]["data-order"]) for r in got] == [
        (str(o["line_no"]), o["order_id"]) for o in orders
    ]
    for row, order in zip(got, orders, strict=True):
        for col in ("paid_at", "drama_id", "amount", "refunds", "net", "commission_rate", "commission"):
            assert row["values"][col] == ("" if order[col] is None else str(order[col])), (order["order_id"], col)
        assert json.loads(row["values"]["linked_refunds"]) == order["linked_refunds"]
        for refund in order["linked_refunds"]:
            assert refund["refund_event_id"] in row["texts"]["linked_refunds"]

    first = shown["lines"][0]["line_no"]
    browser.find_element(By.CSS_SELECTOR, f'#statement-lines button[data-line-orders="{first}"]').click()
    only = rows(browser, "statement-orders")
    assert only and {r["attrs"]["data-line"] for r in only} == {str(first)}
    assert len(only) == sum(1 for o in orders if o["line_no"] == first)

    target = browser.downloads / f"reelroi-statement-{sid}-orders.csv"
    target.unlink(missing_ok=True)
    browser.find_element(By.ID, "statement-csv").click()
    deadline = time.monotonic() + 15
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.exists(), f"no download: {list(browser.downloads.iterdir())}"
    assert target.read_text(encoding="utf-8") == site.api("creator0", f"/api/v1/statements/{sid}/orders", format="csv")


def test_an_admin_sees_every_creators_statements_and_can_narrow_them(
    site: Site, browser: Any, closed: dict[str, Any]
) -> None:
    open_as(site, browser, "admin", "/creator")
    wait_statements(browser)
    every = site.api("admin", "/api/v1/statements")["statements"]
    assert [r["attrs"]["data-statement"] for r in rows(browser, "statement-list")] == [s["statement_id"] for s in every]
    marker = browser.find_element(By.TAG_NAME, "body").get_attribute("data-statements-loaded")
    browser.execute_script("document.getElementById('f-creator').value = arguments[0];", site.creators[1])
    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-statements-loaded") != marker
    )
    theirs = [s["statement_id"] for s in every if s["creator_id"] == site.creators[1]]
    assert [r["attrs"]["data-statement"] for r in rows(browser, "statement-list")] == theirs


@contextlib.contextmanager
def violations(browser: Any) -> Iterator[None]:
    """Every CSP violation of the documents opened in the block is recorded in window.__csp."""
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def test_statements_run_under_the_policy(site: Site, browser: Any, closed: dict[str, Any]) -> None:
    with violations(browser):
        open_as(site, browser, "creator0", "/creator")
        wait_statements(browser)
        mine = site.api("creator0", "/api/v1/statements")["statements"]
        open_statement(browser, mine[0]["statement_id"])
        browser.find_element(By.ID, "lang-toggle").click()  # redraws every label, table and chart
        time.sleep(0.5)
        assert browser.find_element(By.CSS_SELECTOR, "#card-clawback .label").text.strip() == "Commission taken back"
        assert browser.find_element(By.CSS_SELECTOR, '#statement-list th[data-col="period"]').text == "Period"
        browser.find_element(By.ID, "lang-toggle").click()
        time.sleep(0.5)
        assert browser.execute_script("return window.__csp") == []


def test_an_adjustment_names_its_period_and_the_clawback_is_exact(settled: Site, browser: Any) -> None:
    with violations(browser):
        open_as(settled, browser, "cr1", "/creator")
        card = browser.find_element(By.ID, "card-clawback")
        # refunds of 10 (pC, 20%), 40 and 5 (pB, 30%): 55.00 refunded, 15.50 of commission taken back
        assert card.find_element(By.CSS_SELECTOR, ".value").get_attribute("data-value") == "-15.50"
        assert number(card.find_element(By.CSS_SELECTOR, ".value").text) == "-15.50"
        assert number(card.find_element(By.CSS_SELECTOR, ".meta b").text) == "55.00"

        wait_statements(browser)
        listed = rows(browser, "statement-list")
        assert [r["values"]["period"] for r in listed] == ["2026-11", "2026-10"]
        november = listed[0]["attrs"]["data-statement"]
        open_statement(browser, november)
        lines = rows(browser, "statement-lines")
        assert [(r["attrs"]["data-kind"], r["attrs"]["data-period"], r["values"]["commission"]) for r in lines] == [
            ("period", "2026-11", "4.50"),
            ("period", "2026-11", "12.00"),
            ("adjustment", "2026-10", "-3.00"),
        ]
        assert lines[2]["texts"]["kind"].strip() == "调整 · 2026-10"
        assert [r["texts"]["commission_rate"].strip() for r in lines] == ["30%", "20%", "30%"]
        total = browser.find_element(By.CSS_SELECTOR, '#statement-lines tfoot td[data-col="commission"]')
        assert number(total.text) == "13.50"

        orders = {r["attrs"]["data-order"]: r for r in rows(browser, "statement-orders")}
        assert set(orders) == {"o1", "o4", "o5", "o6"}
        assert "r-o4" in orders["o4"]["texts"]["linked_refunds"] and "5.00" in orders["o4"]["texts"]["linked_refunds"]
        assert orders["o4"]["texts"]["paid_at"].strip() == "2026-11-01 00:30:00 +08:00"
        browser.find_element(By.CSS_SELECTOR, '#statement-lines button[data-line-orders="3"]').click()
        assert {r["attrs"]["data-order"] for r in rows(browser, "statement-orders")} == {"o1", "o5"}
        browser.find_element(By.ID, "orders-all").click()
        assert len(rows(browser, "statement-orders")) == 4
        assert browser.execute_script("return window.__csp") == []

        browser.set_window_size(390, 844)  # a phone: the page does not scroll sideways, the wide tables do
        time.sleep(0.4)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert browser.execute_script(
            "const w = document.querySelector('#statement-orders').parentElement; return w.scrollWidth > w.clientWidth"
        )

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / "creator-statement.png"
        browser.set_window_size(1366, 900)
        time.sleep(0.4)
        height = int(browser.execute_script("return document.documentElement.scrollHeight"))
        chrome = int(browser.execute_script("return window.outerHeight - window.innerHeight"))
        browser.set_window_size(1366, min(height + max(chrome, 0), 8000))
        time.sleep(0.6)
        assert browser.save_screenshot(str(path))
        assert path.stat().st_size > 10_000
