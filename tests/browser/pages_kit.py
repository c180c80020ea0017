"""What the browser tests share: ``reelroi serve`` on a generated dataset and headless Chromium.

Everything is set up here: a small generated dataset is replayed into a fresh
chdb directory with the ``reelroi`` command, tokens are created (admin, one
buyer, two creators), ``reelroi serve`` runs as a subprocess on a free local
port, and Selenium drives /usr/bin/chromium through /usr/bin/chromedriver
(never a downloaded driver). The fixtures are session-wide (tests/browser/conftest.py):
one server and one browser for every browser test module.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REELROI = [sys.executable, "-m", "reelroi.cli"]

# ---------------------------------------------------------------- the service


def _cli(*args: str, cwd: Path) -> str:
    proc = subprocess.run([*REELROI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"reelroi {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _subjects(events: Path) -> tuple[str, list[str]]:
    """The buyer with the most campaign configs and the first two creators with plans, read from the events."""
    buyers: collections.Counter[str] = collections.Counter()
    creators: set[str] = set()
    with events.open("rb") as fh:
        for line in fh:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if not isinstance(ev, dict):
                continue
            if ev.get("type") == "campaign" and isinstance(ev.get("buyer_id"), str):
                buyers[ev["buyer_id"]] += 1
            if ev.get("type") == "promotion_plan" and isinstance(ev.get("creator_id"), str):
                creators.add(ev["creator_id"])
    assert buyers and len(creators) >= 2, "the generated data has no buyers or too few creators"
    return buyers.most_common(1)[0][0], sorted(creators)[:2]


class Site:
    def __init__(self, base: str, tokens: dict[str, str], buyer: str, creators: list[str]) -> None:
        self.base = base
        self.tokens = tokens
        self.buyer = buyer
        self.creators = creators

    def api(self, who: str, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode({k: v for k, v in params.items() if v})}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        with urllib.request.urlopen(req, timeout=30) as res:
            body = res.read()
        return body.decode() if params.get("format") == "csv" else json.loads(body)

    def raw(self, who: str, path: str, **params: str) -> bytes:
        """The exact bytes of an answer (a download: CSV with a BOM, xlsx)."""
        url = f"{self.base}{path}?{urllib.parse.urlencode({k: v for k, v in params.items() if v})}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        with urllib.request.urlopen(req, timeout=30) as res:
            return bytes(res.read())


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("browser")
    dsn = f"chdb://{work / 'db'}"
    events = work / "events.jsonl"
    _cli("generate", "--days", "3", "--events", "20000", "--seed", "42", "--out", str(events), cwd=work)
    _cli("replay", str(events), "--db", dsn, cwd=work)
    buyer, creators = _subjects(events)
    tokens = {"admin": _cli("token", "create", "--db", dsn, "--role", "admin", cwd=work).strip()}
    tokens["buyer"] = _cli("token", "create", "--db", dsn, "--role", "buyer", "--subject", buyer, cwd=work).strip()
    for i, creator in enumerate(creators):
        tokens[f"creator{i}"] = _cli(
            "token", "create", "--db", dsn, "--role", "creator", "--subject", creator, cwd=work
        ).strip()

    with serving(dsn, work) as base:
        yield Site(base, tokens, buyer, creators)


@contextlib.contextmanager
def serving(dsn: str, work: Path) -> Iterator[str]:
    """``reelroi serve`` on ``dsn`` until the block ends; yields its base URL."""
    port = _free_port()
    with (work / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [*REELROI, "serve", "--db", dsn, "--host", "127.0.0.1", "--port", str(port)],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(urllib.error.URLError, OSError):
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as res:
                        if res.status == 200:
                            break
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"reelroi serve did not start:\n{(work / 'serve.log').read_text()}")
                time.sleep(0.2)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver or a browser
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--lang=zh-CN",
        f"--user-data-dir={profile}",
        "--window-size=1366,900",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    with contextlib.suppress(Exception):
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _loaded_marker(driver: Any) -> str:
    return driver.execute_script("return document.body ? (document.body.getAttribute('data-loaded') || '') : ''")


def wait_loaded(driver: Any, previous: str = "") -> str:
    """Wait until the page has rendered a (new) answer from the API; fail on an error banner."""
    try:
        WebDriverWait(driver, 20).until(lambda d: _loaded_marker(d) not in ("", previous))
    except TimeoutException:
        pytest.fail(f"page did not load: {driver.current_url}\n{driver.find_element(By.TAG_NAME, 'body').text}")
    marker = _loaded_marker(driver)
    if marker == "error":
        pytest.fail(f"page shows an error: {driver.find_element(By.ID, 'error').text}")
    return marker


def open_as(site: Site, driver: Any, who: str, path: str, lang: str = "zh") -> None:
    """Put the token in localStorage from the sign-in page, then open the page."""
    driver.set_window_size(1366, 900)
    driver.get(site.base + "/")
    driver.execute_script(
        "localStorage.setItem('reelroi.token', arguments[0]); localStorage.setItem('reelroi.lang', arguments[1]);",
        site.tokens[who],
        lang,
    )
    driver.get(site.base + path)
    wait_loaded(driver)


# ---------------------------------------------------------------- what the pages show

CHART_SERIES = """
const chart = echarts.getInstanceByDom(document.getElementById(arguments[0]));
if (!chart) return null;
const opt = chart.getOption();
const axis = a => (a || []).map(x => ({type: x.type, data: x.data || null, min: x.min ?? null, max: x.max ?? null,
  ticks: (x.axisLabel && x.axisLabel.customValues) || null}));
return {
  series: (opt.series || []).map(s => ({id: s.id, type: s.type, name: s.name,
    data: (s.data || []).map(d => (d !== null && typeof d === 'object' && !Array.isArray(d)) ? d.value : d)})),
  xAxis: axis(opt.xAxis), yAxis: axis(opt.yAxis),
  drawn: chart.getDom().querySelectorAll('canvas').length
};
"""


def chart(driver: Any, element_id: str) -> dict[str, Any]:
    """The series and axes an ECharts chart shows, read from its option (ids as charts.js sets them)."""
    option = driver.execute_script(CHART_SERIES, element_id)
    assert option is not None, f"no chart in #{element_id}"
    return option


def series(option: dict[str, Any], series_id: str) -> list[Any]:
    found = [s for s in option["series"] if s["id"] == series_id]
    assert found, f"no series {series_id!r} in {[s['id'] for s in option['series']]}"
    return found[0]["data"]


def full_page_screenshot(driver: Any, path: Path, width: int) -> None:
    """The whole page at ``width`` CSS pixels wide, as one PNG."""
    driver.set_window_size(width, 900)
    time.sleep(0.4)  # charts redraw on resize
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(height, 8000))
    chrome = int(driver.execute_script("return window.outerHeight - window.innerHeight"))
    if chrome > 0:  # the window's own bars take part of the height
        driver.set_window_size(width, min(height + chrome, 8000))
    time.sleep(0.6)
    assert driver.save_screenshot(str(path))
