"""The buyer page's postback card in headless Chromium: conversions reported to platforms vs true.

A server of its own on tests/postback_ledger.py's world: the events replayed with
``reelroi replay``, the ledger written into the same database, then ``reelroi
serve``. The card must show, per campaign of the token's buyer, the true
activations and pays and what was sent, held back by each part of the rule, on
the way and failed, as the summary API says and as counted by hand
(``EXPECTED``); another buyer's campaign is nowhere on the page; an admin sees
every campaign with its buyer; no Content-Security-Policy violation.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    pytest.skip("browser tests need /usr/bin/chromium and /usr/bin/chromedriver", allow_module_level=True)

from pages_kit import Site, _cli, open_as, serving  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests import postback_ledger as world  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.effectiveDirective + ' ' + e.blockedURI));
"""
READ_CARD = """
const panel = document.getElementById('postbacks-panel');
const cells = tr => Object.fromEntries(Array.from(tr.querySelectorAll('td')).map(td =>
  [td.dataset.col, {value: td.dataset.value ?? null, text: td.innerText.trim()}]));
return {
  state: panel.dataset.state,
  visible: panel.offsetParent !== null,
  title: panel.querySelector('h2').innerText.trim(),
  columns: Array.from(panel.querySelectorAll('thead th')).map(th => th.dataset.col),
  rows: Object.fromEntries(Array.from(panel.querySelectorAll('tbody tr[data-campaign]')).map(tr =>
    [tr.dataset.campaign, cells(tr)])),
  totals: Array.from(panel.querySelectorAll('tfoot tr')).map(cells)[0] || null,
  chips: Object.fromEntries(Array.from(panel.querySelectorAll('#postbacks-totals .meta-item')).map(c =>
    [c.dataset.key, c.dataset.value])),
};
"""
COUNTS = (
    "activations", "sent_activations", "pays", "sent_pays", "held_ratio", "held_min_amount", "held_kind", "failed",
    "superseded",
)  # fmt: skip


@pytest.fixture(scope="module")
def ledger_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("postbacks")
    dsn = f"chdb://{work / 'db'}"
    events = work / "events.jsonl"
    events.write_bytes(b"\n".join(world.events()) + b"\n")
    _cli("replay", str(events), "--db", dsn, cwd=work)
    # the ledger, as the postback stage and the sender would have written it (a replay makes none)
    subprocess.run([sys.executable, "-m", "tests.postback_ledger", dsn], cwd=ROOT, check=True, timeout=120)
    tokens = {"admin": _cli("token", "create", "--db", dsn, "--role", "admin", cwd=work).strip()}
    for buyer in ("bA", "bB"):
        tokens[buyer] = _cli("token", "create", "--db", dsn, "--role", "buyer", "--subject", buyer, cwd=work).strip()
    with serving(dsn, work) as base:
        yield Site(base, tokens, "bA", [])


@pytest.fixture
def watched(browser: Any) -> Iterator[Any]:
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    yield browser
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def card(driver: Any) -> dict[str, Any]:
    """The card once its answer is drawn."""
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.getElementById('postbacks-panel').dataset.state") != ""
    )
    shown: dict[str, Any] = driver.execute_script(READ_CARD)
    assert shown["state"] == "loaded", driver.find_element(By.ID, "postbacks-panel").text
    return shown


def assert_row(row: dict[str, Any], campaign: str) -> None:
    want = world.EXPECTED[campaign]
    for col in COUNTS:
        assert row[col]["value"] == str(want[col]) and row[col]["text"] == str(want[col]), (campaign, col, row[col])
    assert row["in_flight"]["text"] == str(want["pending"] + want["sending"]), campaign
    assert row["pay_value"]["text"] == want["pay_value"] and row["sent_pay_value"]["text"] == want["sent_pay_value"]


def test_the_card_shows_the_buyers_campaigns_reported_vs_true(ledger_site: Site, watched: Any) -> None:
    open_as(ledger_site, watched, "bA", "/buyer")
    shown = card(watched)
    assert shown["visible"] and shown["title"] == "回传 vs 真实转化"
    assert set(shown["rows"]) == {"cA1", "cA2"}
    for campaign in ("cA1", "cA2"):
        assert_row(shown["rows"][campaign], campaign)
    a1 = shown["rows"]["cA1"]
    assert a1["name"]["text"] == "春节 A1" and a1["pay_share"]["text"] == "33.33%"  # 1 of 3 pays sent
    assert shown["rows"]["cA2"]["name"]["text"] == '=HYPERLINK("x")'  # a name is text, never markup
    assert "buyer_id" not in shown["columns"]
    # the headline: bA's two campaigns only (cB1's activation and held pay are not in it)
    assert shown["chips"] == {
        "activations": "5", "sent_activations": "1", "pays": "4", "sent_pays": "2", "held": "3", "in_flight": "2",
        "failed": "1",
    }  # fmt: skip
    assert shown["totals"]["activations"]["text"] == "5" and shown["totals"]["held_ratio"]["text"] == "1"
    api = ledger_site.api("bA", "/api/v1/postbacks/summary")
    assert {r["campaign_id"] for r in api["rows"]} == set(shown["rows"])
    body = watched.find_element(By.TAG_NAME, "body").text
    assert "cB1" not in body and "bB" not in body  # another buyer's campaign is nowhere on the page
    watched.find_element(By.ID, "lang-toggle").click()
    time.sleep(0.3)
    english = watched.execute_script(READ_CARD)
    assert english["title"] == "Conversions reported to platforms vs true"
    assert english["rows"]["cA1"]["held_ratio"]["text"] == "1"
    watched.find_element(By.ID, "lang-toggle").click()
    assert watched.execute_script("return window.__csp") == []


def test_the_other_buyer_sees_only_its_own(ledger_site: Site, browser: Any) -> None:
    open_as(ledger_site, browser, "bB", "/buyer")
    shown = card(browser)
    assert set(shown["rows"]) == {"cB1"}
    assert_row(shown["rows"]["cB1"], "cB1")
    assert shown["chips"]["held"] == "1" and shown["chips"]["activations"] == "1"
    assert "cA1" not in browser.find_element(By.TAG_NAME, "body").text


def test_an_admin_sees_every_campaign_with_its_buyer(ledger_site: Site, browser: Any) -> None:
    open_as(ledger_site, browser, "admin", "/buyer")
    shown = card(browser)
    assert set(shown["rows"]) == {"cA1", "cA2", "cB1"}
    for campaign, row in shown["rows"].items():
        assert_row(row, campaign)
        assert row["buyer_id"]["text"] == world.BUYERS[campaign]
    assert shown["chips"]["activations"] == "6" and shown["chips"]["held"] == "4"


def test_the_card_is_on_the_buyer_page_only(ledger_site: Site) -> None:
    import urllib.request

    for path, has in (("/buyer", True), ("/creator", False), ("/", False)):
        with urllib.request.urlopen(ledger_site.base + path, timeout=10) as res:
            page = res.read().decode()
        assert ("postbacks-panel" in page) is has and ("buyer_postbacks.js" in page) is has, path
