"""The buyer page's reports in headless Chromium, each compared with the API for the same token.

The cohort matrix heat map, its unfinished cells, the cohort curve on a
proportional day axis, the policy line (``meta``), funnel columns, the
two-dimensional pivot, the period comparison on the cards, the downloads, and
no Content-Security-Policy violation while charts draw and show tooltips.
The generated data set spans three days, so its last cohorts are unfinished.
Screenshots: docs/screenshots/buyer.png and buyer-mobile.png.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest

pytestmark = pytest.mark.browser

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    pytest.skip("browser tests need /usr/bin/chromium and /usr/bin/chromedriver", allow_module_level=True)

from pages_kit import Site, _loaded_marker, chart, full_page_screenshot, open_as, series, wait_loaded  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MATRIX_DAYS = "0,1,2,3,7,14,30"
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.effectiveDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""

READ_MATRIX = """
return Array.from(document.querySelectorAll('#matrix-table tbody tr:not(.empty)')).map(tr => ({
  key: tr.dataset.key, cohort: tr.dataset.cohort,
  cells: Array.from(tr.querySelectorAll('td.cell')).map(td => ({
    day: Number(td.dataset.day), final: td.dataset.final === 'true', roi: td.dataset.roi, revenue: td.dataset.revenue,
    text: td.innerText.trim(), pending: td.classList.contains('pending'), bg: td.style.backgroundColor}))
}));
"""


def shown(text: str) -> str:
    return text.strip().replace(",", "").replace("\u2212", "-")


def choose(driver: Any, select_id: str, value: str) -> None:
    """Pick an option that reloads the page's data, and wait for the new answer."""
    marker = _loaded_marker(driver)
    Select(driver.find_element(By.ID, select_id)).select_by_value(value)
    wait_loaded(driver, marker)


@pytest.fixture
def watched(browser: Any) -> Any:
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    yield browser
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def assert_matrix_matches(driver: Any, api: dict[str, Any], metric: str) -> None:
    rows = driver.execute_script(READ_MATRIX)
    assert len(rows) == len(api["rows"]) > 0
    days = api["days"]
    for row, want in zip(rows, api["rows"], strict=True):
        assert row["cohort"] == want["cohort_date"]
        assert [c["day"] for c in row["cells"]] == days
        for cell, w in zip(row["cells"], want["cells"], strict=True):
            assert cell["day"] == w["day"]
            assert cell["final"] == w["final"], (row["key"], cell)
            assert cell["roi"] == (w["roi"] or "") and cell["revenue"] == (w["revenue"] or "")
            if w["final"]:
                value = w[metric]
                assert shown(cell["text"]) == ("—" if value is None else value), (row["key"], cell, w)
                assert not cell["pending"]
            else:  # not reached yet: empty and marked, never the revenue so far
                assert cell["text"] == "" and cell["pending"], (row["key"], cell)


def test_matrix_heat_map_equals_the_matrix_api(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    api = site.api("buyer", "/api/v1/roi/matrix", days=MATRIX_DAYS, group_by="source")
    assert api["days"] == [0, 1, 2, 3, 7, 14, 30]
    assert_matrix_matches(browser, api, "roi")
    coloured = [c for r in browser.execute_script(READ_MATRIX) for c in r["cells"] if c["final"] and c["roi"]]
    assert coloured and all(c["bg"] for c in coloured), "final ROI cells are shaded"

    choose(browser, "m-group", "campaign")
    Select(browser.find_element(By.ID, "m-metric")).select_by_value("revenue")
    api = site.api("buyer", "/api/v1/roi/matrix", days=MATRIX_DAYS, group_by="campaign")
    assert_matrix_matches(browser, api, "revenue")
    assert browser.find_element(By.ID, "matrix-table").get_attribute("data-group") == "campaign"


def test_unfinished_figures_are_marked(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    matrix = browser.execute_script(READ_MATRIX)
    cells = [c for r in matrix for c in r["cells"]]
    assert any(c["pending"] for c in cells) and any(c["final"] for c in cells)
    assert matrix[0]["cells"][0]["final"], "the first cohort's D0 has ended"

    choose(browser, "f-group", "date")
    rows = site.api("buyer", "/api/v1/roi", group_by="date")["rows"]
    late = {(r["cohort_date"], col) for r in rows for col in r["unfinished"]}
    assert "roi_d7" in {col for _, col in late}, "the last cohorts of a three-day data set have no final D7"
    marked = browser.execute_script(
        "return Array.from(document.querySelectorAll('#roi-table tbody td[data-unfinished]'))"
        ".map(td => [td.closest('tr').dataset.key, td.dataset.col])"
    )
    shown_cols = {"roi_d0", "roi_d7", "revenue_d0", "revenue_d1", "revenue_d3", "revenue_d7"}
    assert {(k, c) for k, c in marked} == {(d, c) for d, c in late if c in shown_cols}
    # the star is drawn by CSS after the figure, so the cell's text stays the API's value
    star = browser.execute_script(
        "const td = document.querySelector('#roi-table tbody td[data-unfinished]');"
        "return getComputedStyle(td, '::after').content"
    )
    assert "*" in star
    card = browser.find_element(By.CSS_SELECTOR, "#card-roi-total .meta .unfinished")
    assert card.get_attribute("data-unfinished") == "true"


def test_curve_points_equal_the_curve_api_on_a_day_axis(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    api = site.api("buyer", "/api/v1/roi/curve")
    assert [p["offset"] for p in api["points"]] == [0, 1, 3, 7, None]
    curve = chart(browser, "chart-curve")
    assert curve["xAxis"][0]["type"] == "value" and curve["drawn"] > 0
    days = [p for p in api["points"] if p["offset"] is not None and p["roi"] is not None]
    # x is the day offset itself: D1 sits one day from D0, D7 seven days
    assert series(curve, "curve") == [[p["offset"], float(p["roi"])] for p in days]
    total = next(p for p in api["points"] if p["offset"] is None)
    ((x, y),) = series(curve, "total")
    assert x > 7 and y == float(total["roi"])
    # labelled at the days themselves (and the total after a gap), inside the axis' range
    assert curve["xAxis"][0]["ticks"] == [p["offset"] for p in api["points"][:-1]] + [x]
    assert curve["xAxis"][0]["min"] < 0 and curve["xAxis"][0]["max"] > x
    # each point counts only the cohorts old enough for it, and says how many
    assert all(isinstance(p["cohorts"], int) for p in api["points"])
    assert [p["cohorts"] for p in days] == sorted((p["cohorts"] for p in days), reverse=True)


def test_meta_is_shown(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    meta = site.api("buyer", "/api/v1/roi", group_by="campaign")["meta"]
    box = browser.find_element(By.ID, "report-meta")
    assert box.get_attribute("data-meta") == "shown"
    for key in ("currency", "tz", "click_window", "view_window", "as_of"):
        assert box.get_attribute("data-" + key.replace("_", "-")) == str(meta[key] or ""), key
    text = box.text
    for key in ("currency", "tz", "click_window", "view_window"):
        assert str(meta[key]) in text, (key, text)
    assert meta["as_of"][:10] in text
    assert "币种" in text and "时区" in text
    warnings = browser.find_elements(By.CSS_SELECTOR, "#report-meta .meta-warning")
    assert bool(warnings) == bool(meta.get("warning"))


def test_funnel_columns_equal_the_api(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    Select(browser.find_element(By.ID, "f-cols")).select_by_value("funnel")
    api = site.api("buyer", "/api/v1/roi", group_by="campaign")
    funnel = ("impressions", "clicks", "ctr", "click_to_user", "cost_per_user", "payer_rate", "cost_per_payer",
              "arpu", "arppu")  # fmt: skip
    cols = [th.get_attribute("data-col") for th in browser.find_elements(By.CSS_SELECTOR, "#roi-table thead th")]
    assert set(funnel) <= set(cols)
    values = browser.execute_script(
        "return Array.from(document.querySelectorAll('#roi-table tbody tr')).map(tr => {"
        "const o = {key: tr.dataset.key}; tr.querySelectorAll('td').forEach(td => o[td.dataset.col] = td.dataset.value ?? null);"
        "return o; })"
    )
    by_source = {v["key"].split("|")[1] if "|" in v["key"] else v["key"]: v for v in values}
    for r in api["rows"]:
        row = by_source[r["source_id"]]
        for col in funnel:
            assert row[col] == (None if r[col] is None else str(r[col])), (r["source_id"], col)


def test_pivot_cells_equal_the_two_dimensional_api(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    api = site.api("buyer", "/api/v1/roi", group_by="date,campaign")
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#pivot-table tbody td[data-value]'))"
        ".map(td => [td.closest('tr').dataset.down, td.dataset.across, td.dataset.value])"
    )
    want = {(r["cohort_date"], r["source_id"], r["roi_total"]) for r in api["rows"] if r["roi_total"] is not None}
    assert {tuple(c) for c in cells} == want and want
    choose(browser, "p-dims", "drama,platform")
    Select(browser.find_element(By.ID, "p-metric")).select_by_value("spend")
    api = site.api("buyer", "/api/v1/roi", group_by="drama,platform")
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#pivot-table tbody td[data-value]'))"
        ".map(td => [td.closest('tr').dataset.down, td.dataset.across, td.dataset.value])"
    )
    assert {tuple(c) for c in cells} == {(r["drama_id"], r["platform"], r["spend"]) for r in api["rows"]}


def test_roi_table_groups_by_two_dimensions(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    choose(browser, "f-group", "drama,platform")
    api = site.api("buyer", "/api/v1/roi", group_by="drama,platform")
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#roi-table tbody tr:not(.empty)')).map(tr => "
        "[tr.dataset.key, tr.querySelector('td[data-col=spend]').dataset.value,"
        " tr.querySelector('td[data-col=roi_total]').dataset.value ?? null])"
    )
    want = [[f"{r['drama_id']}|{r['platform']}", r["spend"], r["roi_total"]] for r in api["rows"]]
    assert sorted(rows, key=str) == sorted(want, key=str) and want


def test_cards_compare_this_week_with_the_last(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    cmp = site.api("buyer", "/api/v1/roi/compare", period="week")
    assert cmp["period"] == "week" and cmp["current"]["from"] and cmp["previous"]["to"]
    for card, key in (("card-spend", "spend"), ("card-revenue", "revenue_total"), ("card-new-users", "new_users")):
        delta = browser.find_element(By.CSS_SELECTOR, f"#{card} .delta")
        assert delta.is_displayed()
        assert delta.get_attribute("data-current") == str(cmp["current"][key])
        assert delta.get_attribute("data-previous") == str(cmp["previous"][key])
        assert shown(delta.find_element(By.CSS_SELECTOR, ".cur").text) == str(cmp["current"][key])
    choose(browser, "f-compare", "")
    assert not browser.find_element(By.CSS_SELECTOR, "#card-spend .delta").is_displayed()


def cells(xlsx: bytes) -> list[tuple[Any, ...]]:
    """Every sheet's cell values of a workbook, row by row (the files' zip timestamps may differ)."""
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    return [(sheet.title, *row) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]


def _download(browser: Any, button: Any, suffix: str) -> bytes:
    for old in browser.downloads.glob("*"):
        old.unlink()
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        done = [p for p in browser.downloads.glob(f"*{suffix}") if not p.name.endswith(".crdownload")]
        if done:
            time.sleep(0.2)
            return done[0].read_bytes()
        time.sleep(0.1)
    pytest.fail(f"no {suffix} download: {list(browser.downloads.iterdir())}")


def test_excel_downloads_equal_the_api(site: Site, browser: Any) -> None:
    open_as(site, browser, "buyer", "/buyer")
    tools = '.downloads[data-table="roi"] button[data-format="{}"]'
    got = _download(browser, browser.find_element(By.CSS_SELECTOR, tools.format("csv-bom")), ".csv")
    assert got.startswith(b"\xef\xbb\xbf")
    assert got == site.raw("buyer", "/api/v1/roi", group_by="campaign", format="csv", bom="true")
    got = _download(browser, browser.find_element(By.CSS_SELECTOR, tools.format("xlsx")), ".xlsx")
    assert cells(got) == cells(site.raw("buyer", "/api/v1/roi", group_by="campaign", format="xlsx"))
    matrix = '.downloads[data-table="matrix"] button[data-format="xlsx"]'
    got = _download(browser, browser.find_element(By.CSS_SELECTOR, matrix), ".xlsx")
    want = site.raw("buyer", "/api/v1/roi/matrix", group_by="source", days=MATRIX_DAYS, format="xlsx")
    assert cells(got) == cells(want) and len(cells(want)) > 1


@pytest.mark.parametrize("who", ["buyer", "admin"])
def test_reports_and_tooltips_run_under_the_policy(site: Site, watched: Any, who: str) -> None:
    open_as(site, watched, who, "/buyer")
    for chart_id in ("chart-daily", "chart-curve", "chart-split"):
        assert watched.execute_script(
            "const c = echarts.getInstanceByDom(document.getElementById(arguments[0]));"
            "c.dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0});"
            "return document.getElementById(arguments[0]).querySelectorAll('.chart-tip').length",
            chart_id,
        ), f"no tooltip on {chart_id}"
    Select(watched.find_element(By.ID, "m-metric")).select_by_value("revenue")
    watched.find_element(By.ID, "lang-toggle").click()  # redraws every label, chart and table
    time.sleep(0.5)
    assert "Cohort matrix" in watched.find_element(By.ID, "matrix-panel").text
    assert "Currency" in watched.find_element(By.ID, "report-meta").text
    watched.find_element(By.ID, "lang-toggle").click()
    assert watched.execute_script("return window.__csp") == []
    assert watched.execute_script("return document.querySelectorAll('[data-chart=drawn] canvas').length") >= 3


def test_buyer_screenshots_desktop_and_mobile(site: Site, browser: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    open_as(site, browser, "buyer", "/buyer")
    full_page_screenshot(browser, SCREENSHOTS / "buyer.png", 1366)

    open_as(site, browser, "buyer", "/buyer")
    browser.set_window_size(390, 844)
    time.sleep(0.4)
    # the page itself does not scroll sideways on a phone; the wide tables do, inside their boxes
    assert browser.execute_script("return document.documentElement.scrollWidth") <= browser.execute_script(
        "return window.innerWidth"
    )
    for table in ("roi-table", "matrix-table"):
        assert browser.execute_script(
            "const w = document.getElementById(arguments[0]).parentElement; return w.scrollWidth > w.clientWidth", table
        ), table
    assert browser.find_element(By.ID, "card-spend").is_displayed()
    full_page_screenshot(browser, SCREENSHOTS / "buyer-mobile.png", 390)
    for name in ("buyer.png", "buyer-mobile.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
