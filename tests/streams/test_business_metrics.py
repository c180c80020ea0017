"""Business series behind the metrics token, on the real listeners, scraped by a real Prometheus.

``reelroi serve`` runs as a subprocess with ``REELROI_METRICS_TOKEN`` set; the
worker's listener (``serve_metrics``) runs in this process. Prometheus is loaded
with the scrape jobs of the shipped infra/prometheus/prometheus.yml, only the
targets and the credentials file pointed at this machine, plus a copy of the
business job holding a wrong token.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from attribution import testing as kit
from streams.metrics import BUSINESS_PATH, MetricsSettings, serve_metrics
from streams.watcher import LAST_SUCCESS, REVENUE

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-the-scraper"
BUSINESS_NAMES = ("reelroi_revenue_attributed", "reelroi_users", "reelroi_watcher_last_success_timestamp_seconds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:  # not listening yet
        return 0, ""


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_listener_serves_business_series_only_with_the_token() -> None:
    port = free_port()
    serve_metrics(MetricsSettings(host="127.0.0.1", port=port, token=SecretStr(TOKEN)))
    REVENUE.labels("douyin", "campaign").set(12.5)
    base = f"http://127.0.0.1:{port}"
    code, text = fetch(base + "/metrics")
    assert code == 200 and "reelroi_events_consumed_total" in text
    assert not [name for name in BUSINESS_NAMES if name in text]
    for token in (None, "wrong", TOKEN[:-1], TOKEN + "x"):
        code, text = fetch(base + BUSINESS_PATH, token)
        assert code == 401 and "reelroi_" not in text, token
    code, text = fetch(base + BUSINESS_PATH, TOKEN)
    assert code == 200 and 'reelroi_revenue_attributed{platform="douyin",source_kind="campaign"} 12.5' in text
    assert fetch(base + "/elsewhere")[0] == 404

    off = free_port()
    serve_metrics(MetricsSettings(host="127.0.0.1", port=off, token=None))
    assert fetch(f"http://127.0.0.1:{off}{BUSINESS_PATH}", TOKEN)[0] == 404  # no token set: not served at all


def _scrape_config(tmp_path: Path, api: str, worker: str) -> Path:
    """The shipped jobs with local targets and credentials files, and the business job with a wrong token."""
    shipped = {
        j["job_name"]: j
        for j in yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())["scrape_configs"]
    }
    (tmp_path / "token").write_text(TOKEN + "\n")  # a trailing newline, as secret files often have
    (tmp_path / "wrong").write_text("not-the-token")
    jobs = []
    pipeline = {k: v for k, v in shipped["reelroi-api"].items() if k != "static_configs"}
    jobs.append({**pipeline, "static_configs": [{"targets": [api, worker]}]})
    for name, secret in (("reelroi-business", "token"), ("business-wrong-token", "wrong")):
        job = {k: v for k, v in shipped["reelroi-business"].items() if k not in ("dns_sd_configs", "static_configs")}
        job["job_name"] = name
        job["authorization"] = {**job["authorization"], "credentials_file": str(tmp_path / secret)}
        job["static_configs"] = [{"targets": [api, worker]}]
        jobs.append(job)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}))
    return config


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (.ci/run installs it)")
def test_prometheus_scrapes_business_series_with_the_token_and_not_without(tmp_path: Path) -> None:
    db = f"chdb://{tmp_path / 'db'}"
    events = tmp_path / "events.jsonl"
    lines = [
        kit.campaign(campaign_id="c1", platform="douyin"),
        kit.spend(campaign_id="c1", amount="100"),
        kit.click(campaign_id="c1", click_id="k1"),
        kit.redirect(user_id="u1", click_id="k1"),
        kit.payment(user_id="u1", order_id="o1", amount="30.00"),
    ]
    events.write_bytes(b"\n".join(lines) + b"\n")
    cli = [sys.executable, "-m", "reelroi.cli"]
    subprocess.run([*cli, "replay", str(events), "--db", db], check=True, capture_output=True, timeout=120)
    api_port, worker_port, prom_port = free_port(), free_port(), free_port()
    serve_metrics(MetricsSettings(host="127.0.0.1", port=worker_port, token=SecretStr(TOKEN)))
    LAST_SUCCESS.set(time.time())
    env = {**os.environ, "REELROI_METRICS_TOKEN": TOKEN, "REELROI_WATCH_INTERVAL_S": "1"}
    serve = subprocess.Popen(
        [*cli, "serve", "--db", db, "--host", "127.0.0.1", "--port", str(api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )
    config = _scrape_config(tmp_path, f"127.0.0.1:{api_port}", f"127.0.0.1:{worker_port}")
    prometheus = subprocess.Popen(
        [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    api = f"http://127.0.0.1:{prom_port}/api/v1"

    def query(expr: str) -> list[dict[str, Any]]:
        code, body = fetch(f"{api}/query?{urllib.parse.urlencode({'query': expr})}")
        return json.loads(body)["data"]["result"] if code == 200 else []

    def targets() -> dict[tuple[str, str], dict[str, Any]]:
        code, body = fetch(f"{api}/targets")
        active = json.loads(body)["data"]["activeTargets"] if code == 200 else []
        return {(t["labels"]["job"], t["labels"]["instance"]): t for t in active if t["lastScrape"][:4] != "0001"}

    try:
        every = {(job, inst) for job in ("reelroi-api", "reelroi-business", "business-wrong-token")
                 for inst in (f"127.0.0.1:{api_port}", f"127.0.0.1:{worker_port}")}  # fmt: skip
        seen = wait_for(
            lambda: (lambda t: t if set(t) == every and all(v["health"] != "unknown" for v in t.values()) else None)(
                targets()
            ),
            90,
            "every target scraped",
        )
        for (job, inst), target in seen.items():
            if job == "business-wrong-token":
                assert target["health"] == "down" and "401" in target["lastError"], (inst, target["lastError"])
            else:
                assert target["health"] == "up", (job, inst, target["lastError"])
        # the API's watcher refreshes every second: its revenue arrives, through the business job only
        revenue = wait_for(
            lambda: query(f'reelroi_revenue_attributed{{job="reelroi-business",instance="127.0.0.1:{api_port}"}}'),
            60,
            "the API's business series in Prometheus",
        )
        assert {r["metric"]["platform"]: float(r["value"][1]) for r in revenue} == {"douyin": 30.0}
        assert query('reelroi_watcher_last_success_timestamp_seconds{job="reelroi-business"}')
        leaked = query(
            '{job=~"reelroi-api|business-wrong-token", __name__=~"reelroi_(campaign|revenue|users|organic|new_users|watcher).*"}'
        )
        assert leaked == []
        assert query('reelroi_events_consumed_total{job="reelroi-api"}') or query('up{job="reelroi-api"} == 1')
    finally:
        prometheus.terminate()
        serve.terminate()
        prometheus.wait(timeout=30)
        serve.wait(timeout=30)
