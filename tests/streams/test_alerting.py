"""End to end: a real Prometheus scrapes a real worker, ClickHouse writes fail, the alert fires.

The worker (tests/streams/group_harness.py) serves /metrics on loopback; the
intake table is renamed away under it, so every intake write fails for real and
is retried. Prometheus, loaded with the shipped rules file unchanged, must
report ``ReelroiSinkFailing`` firing. Then the table comes back and every
record is attributed: nothing was lost while the sink was down.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "rules" / "reelroi.yml"
HARNESS = Path(__file__).with_name("group_harness.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (.ci/run installs it)")
def test_sink_failing_alert_fires_in_a_real_prometheus(tmp_path: Path) -> None:
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        f"  - job_name: reelroi-worker\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    lines = list(generate(GeneratorConfig(seed=4, days=1, events=3_000)))
    heal = tmp_path / "heal"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "a.", partitions=2)
        harness = subprocess.Popen(
            [
                sys.executable, str(HARNESS), "--db", str(tmp_path / "db"), "--bootstrap", broker.bootstrap,
                "--prefix", "a.", "--start", "0", "--break-intake", "20", "--heal-file", str(heal),
                "--idle", "20", "--metrics-port", str(metrics_port), "--out", str(tmp_path / "out.json"),
            ],
            stderr=(tmp_path / "harness.log").open("wb"),
        )  # fmt: skip
        prometheus = subprocess.Popen(
            [
                "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("wb"),
        )  # fmt: skip
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        try:
            half = len(lines) // 2
            produce(broker.bootstrap, "a.", lines[:half])  # written normally
            time.sleep(22)  # the intake table is gone from t=20s
            produce(broker.bootstrap, "a.", lines[half:])  # these writes fail and are retried

            def target_up() -> bool:
                targets = get_json(f"{api}/targets")["data"]["activeTargets"]
                return any(t["health"] == "up" for t in targets)

            wait_for(target_up, 30, "Prometheus to scrape the worker")

            def firing() -> list[dict]:  # type: ignore[type-arg]
                alerts = get_json(f"{api}/alerts")["data"]["alerts"]
                return [
                    a for a in alerts if a["labels"]["alertname"] == "ReelroiSinkFailing" and a["state"] == "firing"
                ]

            alerts = wait_for(firing, 240, "ReelroiSinkFailing to fire")
            assert alerts[0]["labels"]["severity"] == "page"
            assert "runbook_url" in alerts[0]["annotations"]
            heal.touch()
            assert harness.wait(timeout=180) == 0, (tmp_path / "harness.log").read_text()[-3000:]
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
            if harness.poll() is None:
                harness.kill()
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["workers"][0]["attributed"] == len(lines)  # the failed batches came through afterwards
