"""The web pages, driven as a person would in Debian's headless Chromium.

The server and the browser are set up in tests/browser/pages_kit.py. What the
pages show is compared with what the API answers for the same token and filters.

Screenshots go to docs/screenshots/ (creator.png here; buyer.png and buyer-mobile.png in
test_buyer_reports.py). Charts are read from ECharts' option (pages_kit.chart).
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
REELROI = [sys.executable, "-m", "reelroi.cli"]

pytestmark = pytest.mark.browser

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "browser tests need /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (pip install -e '.[dev]')")
from pages_kit import Site, _loaded_marker, chart, full_page_screenshot, open_as, series, wait_loaded  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

MONEY = (
    "spend", "revenue_iap", "revenue_iaa", "refunds", "revenue_d0", "revenue_d1", "revenue_d3", "revenue_d7",
    "revenue_total", "commission", "gross", "net",
)  # fmt: skip
COUNTS = ("new_users", "payers")
ROIS = ("roi_d0", "roi_d7", "roi_total")
KEYS = {
    "campaign": ("source_kind", "source_id", "name", "platform", "drama_id", "buyer_id"),
    "date": ("cohort_date",),
    "source_date": ("source_kind", "source_id", "cohort_date"),
    "drama": ("drama_id",),
}


def shown(text: str) -> str:
    """A displayed number back in the API's form: no thousands separators, ASCII minus."""
    return text.strip().replace(",", "").replace("\u2212", "-")


def expected(col: str, value: Any) -> str:
    if value is None:
        return "—"
    return str(value)


def table_rows(driver: Any, table_id: str) -> list[dict[str, Any]]:
    """Each body row of a table as {"attrs": {...}, "cells": {col: text}}, read from the DOM in one go."""
    return driver.execute_script(
        """
        const rows = [];
        document.querySelectorAll('#' + arguments[0] + ' tbody tr:not(.empty)').forEach(tr => {
          const attrs = {};
          for (const a of tr.attributes) attrs[a.name] = a.value;
          const cells = {}, classes = {}, values = {};
          tr.querySelectorAll('td').forEach(td => {
            cells[td.dataset.col] = td.innerText;
            classes[td.dataset.col] = td.className;
            values[td.dataset.col] = td.dataset.value === undefined ? null : td.dataset.value;
          });
          rows.push({attrs, cells, classes, values});
        });
        return rows;
        """,
        table_id,
    )


def header_cols(driver: Any, table_id: str) -> list[str]:
    return [th.get_attribute("data-col") for th in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th")]


def assert_roi_table_matches(driver: Any, api_rows: list[dict[str, Any]], group: str) -> None:
    rows = table_rows(driver, "roi-table")
    cols = header_cols(driver, "roi-table")
    assert len(rows) == len(api_rows), f"table shows {len(rows)} rows, the API {len(api_rows)}"
    if group == "date":
        api_rows = sorted(api_rows, key=lambda r: r["cohort_date"])
    keys = KEYS[group]
    want_keys = ["|".join("" if r[k] is None else str(r[k]) for k in keys) for r in api_rows]
    assert [r["attrs"]["data-key"] for r in rows] == want_keys
    for row, api in zip(rows, api_rows, strict=True):
        for col in cols:
            text = row["cells"][col]
            if col in MONEY or col in COUNTS:
                assert shown(text) == str(api[col]), (row["attrs"]["data-key"], col, text, api[col])
            elif col in ROIS:
                assert text.strip() == expected(col, api[col]), (row["attrs"]["data-key"], col, text, api[col])
                if api[col] is not None:
                    flagged = "roi-low" in row["classes"][col]
                    assert flagged == (float(api[col]) < 1), (col, api[col], row["classes"][col])
            else:
                assert (row["values"][col] or "") == str(api[col] or ""), (col, row["values"][col], api[col])
                assert text.strip(), f"empty {col} cell"


# ---------------------------------------------------------------- sign-in


def test_sign_in_stores_token_and_redirects_by_role(site: Site, browser: Any) -> None:
    browser.get(site.base + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(site.base + "/")
    box = browser.find_element(By.ID, "token-input")

    box.send_keys("rr_nope_wrong")
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "sign-in-error").is_displayed())
    assert browser.execute_script("return localStorage.getItem('reelroi.token')") is None

    box.clear()
    box.send_keys(site.tokens["buyer"])
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/buyer"))
    wait_loaded(browser)
    assert browser.execute_script("return localStorage.getItem('reelroi.token')") == site.tokens["buyer"]
    assert site.buyer in browser.find_element(By.ID, "who").text

    browser.find_element(By.ID, "sign-out").click()
    WebDriverWait(browser, 10).until(lambda d: urllib.parse.urlparse(d.current_url).path == "/")
    assert browser.execute_script("return localStorage.getItem('reelroi.token')") is None
    browser.find_element(By.ID, "token-input").send_keys(site.tokens["creator0"])
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/creator"))
    wait_loaded(browser)
    assert browser.find_element(By.ID, "sign-out").is_displayed()


def test_pages_send_people_to_their_own_page(site: Site, browser: Any) -> None:
    open_as(site, browser, "creator0", "/creator")
    browser.get(site.base + "/buyer")
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/creator"))
    open_as(site, browser, "buyer", "/buyer")
    browser.get(site.base + "/creator")
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/buyer"))
    # a revoked or wrong token goes back to sign-in
    browser.execute_script("localStorage.setItem('reelroi.token', 'rr_0_bad')")
    browser.get(site.base + "/buyer")
    WebDriverWait(browser, 10).until(lambda d: urllib.parse.urlparse(d.current_url).path == "/")
    assert browser.execute_script("return localStorage.getItem('reelroi.token')") is None


# ---------------------------------------------------------------- buyer dashboard


def test_buyer_headline_cards_equal_api_totals(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    totals = site.api("buyer", "/api/v1/roi", group_by="campaign")["totals"]
    assert totals["spend"] != "0.00", "the chosen buyer has no spend in the generated data"
    for card, key in (
        ("card-spend", "spend"),
        ("card-revenue", "revenue_total"),
        ("card-roi-d0", "roi_d0"),
        ("card-roi-total", "roi_total"),
        ("card-new-users", "new_users"),
        ("card-payers", "payers"),
    ):
        value = browser.find_element(By.CSS_SELECTOR, f"#{card} .value")
        assert shown(value.text) == expected(key, totals[key]), (card, value.text, totals[key])
        assert browser.find_element(By.CSS_SELECTOR, f"#{card} .label").text.strip()
    # headline cards come before the charts and the table
    y_cards = browser.find_element(By.ID, "card-spend").location["y"]
    assert y_cards < browser.find_element(By.ID, "chart-daily").location["y"]
    assert y_cards < browser.find_element(By.ID, "roi-table").location["y"]


def test_buyer_table_matches_api_and_shows_only_their_campaigns(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    api = site.api("buyer", "/api/v1/roi", group_by="campaign")
    assert api["rows"], "the chosen buyer has no campaigns"
    assert_roi_table_matches(browser, api["rows"], "campaign")
    rows = table_rows(browser, "roi-table")
    assert {r["attrs"]["data-buyer"] for r in rows} == {site.buyer}

    everyone = site.api("admin", "/api/v1/roi", group_by="campaign", source_kind="campaign")["rows"]
    others = {r["source_id"] for r in everyone if r["buyer_id"] != site.buyer}
    assert others, "the data should have other buyers' campaigns to hide"
    on_page = {r["attrs"].get("data-source-id") for r in rows}
    assert not on_page & others
    body = browser.find_element(By.ID, "roi-table").text
    for other in others:
        assert other not in body


def test_buyer_filters_and_group_by_follow_the_api(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    campaigns = site.api("buyer", "/api/v1/roi", group_by="campaign")["rows"]
    platform = campaigns[0]["platform"]

    marker = _loaded_marker(browser)
    Select(browser.find_element(By.ID, "f-platform")).select_by_value(platform)
    marker = wait_loaded(browser, marker)
    Select(browser.find_element(By.ID, "f-group")).select_by_value("date")
    marker = wait_loaded(browser, marker)
    api = site.api("buyer", "/api/v1/roi", group_by="date", platform=platform)
    assert_roi_table_matches(browser, api["rows"], "date")
    assert shown(browser.find_element(By.CSS_SELECTOR, "#card-spend .value").text) == api["totals"]["spend"]

    dates = sorted(r["cohort_date"] for r in api["rows"])
    drama = campaigns[0]["drama_id"]
    browser.execute_script(
        "document.getElementById('f-from').value = arguments[0]; document.getElementById('f-to').value = arguments[0];",
        dates[-1],
    )
    browser.find_element(By.ID, "f-drama").send_keys(drama)
    Select(browser.find_element(By.ID, "f-group")).select_by_value("source_date")
    marker = wait_loaded(browser, marker)
    api = site.api(
        "buyer",
        "/api/v1/roi",
        group_by="source_date",
        platform=platform,
        drama_id=drama,
        **{"from": dates[-1], "to": dates[-1]},
    )
    assert_roi_table_matches(browser, api["rows"], "source_date")
    assert shown(browser.find_element(By.CSS_SELECTOR, "#card-spend .value").text) == api["totals"]["spend"]

    browser.find_element(By.ID, "reset").click()
    wait_loaded(browser, marker)
    assert_roi_table_matches(browser, site.api("buyer", "/api/v1/roi", group_by="campaign")["rows"], "campaign")


def test_buyer_table_sorts_and_filters(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")

    def column(col: str) -> list[float]:
        return [float(shown(r["cells"][col])) for r in table_rows(browser, "roi-table")]

    header = browser.find_element(By.CSS_SELECTOR, '#roi-table th[data-col="new_users"]')
    header.click()
    values = column("new_users")
    assert values == sorted(values, reverse=True)
    browser.find_element(By.CSS_SELECTOR, '#roi-table th[data-col="new_users"]').click()
    values = column("new_users")
    assert values == sorted(values)
    assert (
        browser.find_element(By.CSS_SELECTOR, '#roi-table th[data-col="new_users"]').get_attribute("aria-sort")
        == "ascending"
    )

    rows = table_rows(browser, "roi-table")
    target = rows[-1]["attrs"]["data-source-id"]
    browser.find_element(By.ID, "table-filter").send_keys(target)
    filtered = table_rows(browser, "roi-table")
    assert filtered and all(target in " ".join(r["cells"].values()) for r in filtered)
    assert len(filtered) <= len(rows)
    # right-aligned numbers
    align = browser.execute_script(
        "return getComputedStyle(document.querySelector('#roi-table tbody td[data-col=spend]')).textAlign"
    )
    assert align == "right"


def test_buyer_charts_are_drawn(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    daily = sorted(site.api("buyer", "/api/v1/roi", group_by="date")["rows"], key=lambda r: r["cohort_date"])
    bars = chart(browser, "chart-daily")
    assert bars["drawn"] > 0
    assert bars["xAxis"][0]["data"] == [r["cohort_date"] for r in daily]
    for key in ("spend", "revenue_total"):
        assert series(bars, key) == pytest.approx([float(r[key]) for r in daily], abs=0.005)
    assert series(bars, "line") == [None if r["roi_total"] is None else float(r["roi_total"]) for r in daily]

    points = [p for p in site.api("buyer", "/api/v1/roi/curve")["points"] if p["roi"] is not None]
    curve = chart(browser, "chart-curve")
    assert curve["xAxis"][0]["type"] == "value"  # days, not evenly spaced categories
    assert series(curve, "curve") == [[p["offset"], float(p["roi"])] for p in points if p["offset"] is not None]
    split = chart(browser, "chart-split")
    totals = site.api("buyer", "/api/v1/roi", group_by="campaign")["totals"]
    assert series(split, "split") == pytest.approx([float(totals["revenue_iap"]), float(totals["revenue_iaa"])])


def test_buyer_csv_download_matches_api(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    for old in browser.downloads.glob("*"):
        old.unlink()
    browser.find_element(By.ID, "csv-download").click()
    target = browser.downloads / "reelroi-roi-campaign.csv"
    deadline = time.monotonic() + 15
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.exists(), f"no download: {list(browser.downloads.iterdir())}"
    assert target.read_text(encoding="utf-8") == site.api("buyer", "/api/v1/roi", group_by="campaign", format="csv")


# ---------------------------------------------------------------- creator page


@pytest.mark.parametrize("index", [0, 1])
def test_creator_sees_only_their_own_plans(site: Site, browser: Any, index: int) -> None:
    me, other = f"creator{index}", f"creator{1 - index}"
    open_as(site, browser, me, "/creator")
    plans = site.api(me, "/api/v1/commission", group_by="plan")
    days = site.api(me, "/api/v1/commission", group_by="day")
    theirs = {r["plan_id"] for r in site.api(other, "/api/v1/commission", group_by="plan")["rows"]}
    assert plans["rows"] and theirs, "both creators should have commission in the generated data"

    page_plans = [r["attrs"]["data-plan"] for r in table_rows(browser, "plan-table")]
    assert sorted(page_plans) == sorted(r["plan_id"] for r in plans["rows"])
    every_plan_on_page = set(
        browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-plan]')).map(e => e.dataset.plan)"
            ".concat(Array.from(document.querySelectorAll('#f-plan option')).map(o => o.value).filter(Boolean))"
        )
    )
    assert every_plan_on_page == set(page_plans)
    assert not every_plan_on_page & theirs
    text = browser.find_element(By.TAG_NAME, "body").text
    for plan in theirs:
        assert plan not in text

    by_plan = {r["attrs"]["data-plan"]: r["cells"] for r in table_rows(browser, "plan-table")}
    for r in plans["rows"]:
        for col in ("gross", "refunds", "net", "commission"):
            assert shown(by_plan[r["plan_id"]][col]) == r[col], (r["plan_id"], col)

    day_rows = table_rows(browser, "commission-day-table")
    assert [r["attrs"]["data-date"] for r in day_rows] == [r["date"] for r in days["rows"]]
    for row, api in zip(day_rows, days["rows"], strict=True):
        for col in ("gross", "refunds", "net", "commission"):
            assert shown(row["cells"][col]) == api[col]

    totals = days["totals"]
    assert shown(browser.find_element(By.CSS_SELECTOR, "#card-commission .value").text) == totals["commission"]
    assert shown(browser.find_element(By.CSS_SELECTOR, "#card-net .value").text) == totals["net"]
    # the commission refunds took back, not the refunded sales (issue 12)
    clawback = site.api(me, "/api/v1/commission/clawback")["totals"]["clawback"]
    assert shown(browser.find_element(By.CSS_SELECTOR, "#card-clawback .value").text) == clawback
    bars = chart(browser, "chart-commission")
    assert series(bars, "commission") == pytest.approx([float(r["commission"]) for r in days["rows"]])


def test_creator_date_filter(site: Site, browser: Any) -> None:
    open_as(site, browser, "creator0", "/creator")
    days = site.api("creator0", "/api/v1/commission", group_by="day")["rows"]
    day = days[0]["date"]
    marker = _loaded_marker(browser)
    browser.execute_script(
        "document.getElementById('f-from').value = arguments[0]; document.getElementById('f-to').value = arguments[0];",
        day,
    )
    browser.find_element(By.ID, "apply").click()
    wait_loaded(browser, marker)
    want = site.api("creator0", "/api/v1/commission", group_by="plan", **{"from": day, "to": day})
    got = {r["attrs"]["data-plan"]: shown(r["cells"]["commission"]) for r in table_rows(browser, "plan-table")}
    assert got == {r["plan_id"]: r["commission"] for r in want["rows"]}
    assert [r["attrs"]["data-date"] for r in table_rows(browser, "commission-day-table")] == [day]


# ---------------------------------------------------------------- language, privacy, layout


def test_language_toggle_switches_labels_and_persists(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer", lang="zh")
    label = lambda: browser.find_element(By.CSS_SELECTOR, "#card-spend .label").text.strip()  # noqa: E731
    head = lambda: browser.find_element(By.CSS_SELECTOR, '#roi-table th[data-col="spend"] .th-main').text  # noqa: E731
    assert label() == "消耗"
    assert "消耗" in head()
    assert browser.find_element(By.ID, "sign-out").text == "退出登录"

    browser.find_element(By.ID, "lang-toggle").click()
    assert label() == "Spend"
    assert "Spend" in head()
    assert browser.find_element(By.ID, "sign-out").text == "Sign out"
    assert browser.execute_script("return localStorage.getItem('reelroi.lang')") == "en"
    assert browser.execute_script("return document.documentElement.lang") == "en"

    browser.refresh()
    wait_loaded(browser)
    assert label() == "Spend"
    browser.find_element(By.ID, "lang-toggle").click()
    assert label() == "消耗"


def test_no_request_leaves_localhost_and_no_token_in_urls(site: Site, browser: Any) -> None:
    for who, path in (("buyer", "/buyer"), ("creator0", "/creator"), ("admin", "/buyer"), ("admin", "/")):
        open_as(site, browser, who, "/buyer" if path == "/" else path)
        if path == "/":
            browser.get(site.base + "/")
            WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "signed-in").is_displayed())
            assert browser.find_element(By.ID, "sign-out").is_displayed()
        entries = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat(performance.getEntriesByType('navigation').map(e => e.name))"
        )
        assert entries
        for url in entries:
            parsed = urllib.parse.urlparse(url)
            assert parsed.scheme in ("http", "data", "blob"), url
            assert parsed.hostname in ("127.0.0.1", "localhost", None), url
            assert site.tokens[who] not in url
        external = browser.execute_script(
            "return Array.from(document.querySelectorAll('script[src],link[href],img[src],iframe[src]'))"
            ".map(e => e.src || e.href).filter(u => !u.startsWith(location.origin) && !u.startsWith('data:'))"
        )
        assert external == []


def test_creator_screenshot(site: Site, browser: Any) -> None:
    """The buyer screenshots are taken in test_buyer_reports.py."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_as(site, browser, "creator0", "/creator")
    full_page_screenshot(browser, SCREENSHOTS / "creator.png", 1366)
    assert (SCREENSHOTS / "creator.png").stat().st_size > 10_000
