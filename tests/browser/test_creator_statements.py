"""The creator page's clawback, policy line and statements (分账), in headless Chromium.

The statements of the generated data's first month are closed through the API
(as an admin would), then the page must show what the API answers: the
clawback card is the commission refunds took back (not the refunded sales),
the statements list is the token's own, and a statement opens to its lines
and orders, with the API's CSV as the download. The strict CSP holds throughout.

Screenshot: docs/screenshots/creator-statement.png (a statement opened).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    pytest.skip("browser tests need /usr/bin/chromium and /usr/bin/chromedriver", allow_module_level=True)

pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (pip install -e '.[dev]')")
from pages_kit import Site, open_as  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

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


def test_statements_run_under_the_policy_and_screenshot(site: Site, browser: Any, closed: dict[str, Any]) -> None:
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    try:
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
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
