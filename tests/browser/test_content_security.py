"""The Content-Security-Policy as headless Chromium enforces it on the real ``reelroi serve``.

The pages must run under the strict policy without a single violation (no
inline script or style left), and the policy must really stop what an injected
bit of markup would do: inline handlers, inline scripts, and framing the pages
(the token sits in ``localStorage`` of this origin).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    pytest.skip("browser tests need /usr/bin/chromium and /usr/bin/chromedriver", allow_module_level=True)

from pages_kit import Site, open_as  # noqa: E402

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.effectiveDirective + ' ' + (e.blockedURI || '')));
"""


@pytest.fixture
def watched(browser: Any) -> Any:
    """The browser, recording every CSP violation of every document it opens from now on."""
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    yield browser
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


@pytest.mark.parametrize(
    ("who", "path"), [("admin", "/"), ("buyer", "/buyer"), ("admin", "/buyer"), ("creator0", "/creator")]
)
def test_pages_run_under_the_policy_without_a_violation(site: Site, watched: Any, who: str, path: str) -> None:
    open_as(site, watched, who, "/buyer" if path == "/" else path)
    if path == "/":
        watched.get(site.base + "/")
    watched.find_element("id", "lang-toggle").click()  # redraws every label and chart
    time.sleep(0.5)
    assert watched.execute_script("return window.__csp") == []
    # the charts (ECharts on canvas) and the share bars are drawn (through the CSSOM, which the policy allows)
    if path != "/":
        assert watched.execute_script("return document.querySelectorAll('[data-chart=drawn] canvas').length") > 0


def test_injected_markup_cannot_run_script(site: Site, watched: Any) -> None:
    open_as(site, watched, "buyer", "/buyer")
    watched.execute_script(
        """
        const box = document.createElement('div');
        box.innerHTML = '<img src="data:," onerror="window.__pwned = 1"><a href="#" style="color:red">x</a>';
        document.body.appendChild(box);
        const s = document.createElement('script');
        s.textContent = 'window.__pwned = 2';
        document.body.appendChild(s);
        """
    )
    time.sleep(0.5)
    assert watched.execute_script("return window.__pwned === undefined")
    blocked = watched.execute_script("return window.__csp")
    assert any(v.startswith("script-src") for v in blocked), blocked
    assert any(v.startswith("style-src") for v in blocked), blocked


def test_the_pages_cannot_be_framed(site: Site, watched: Any) -> None:
    open_as(site, watched, "buyer", "/buyer")
    watched.execute_script(
        "const f = document.createElement('iframe'); f.id = 'framed'; f.src = '/buyer'; document.body.appendChild(f);"
    )
    time.sleep(2)
    # a blocked frame holds Chromium's error page, of another origin: no document of ours inside
    assert watched.execute_script(
        "const d = document.getElementById('framed').contentDocument; return d === null || !d.getElementById('roi-table')"
    )
