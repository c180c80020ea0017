"""End to end: a real Prometheus scrapes a real sink, its ClickHouse writes fail, the alert fires.

The sink (``reelroi sink``, beside a worker) serves /metrics on loopback; its
database directory is moved away under it and a file takes its place, so every
write fails for real and is retried. Prometheus, loaded with the shipped rules
file unchanged, must report ``ReelroiSinkFailing`` firing. Then the directory
comes back, a sink is started on it again, and the reports equal a replay:
nothing was lost while the sink was down.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker, free_port
from streams.produce import create_topics, produce
from tests.streams.pipeline import Pipeline, kill, replayed_reports, reports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "rules" / "reelroi.yml"


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


def sink_job() -> str:
    """The scrape job whose write failures ReelroiSinkFailing counts, as the shipped rule selects it."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    (expr,) = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == "ReelroiSinkFailing"]
    found = re.search(r'job\s*=\s*"([^"]+)"', expr)
    assert found, expr
    return found.group(1)


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (.ci/run installs it)")
def test_sink_failing_alert_fires_in_a_real_prometheus(tmp_path: Path) -> None:
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        f"  - job_name: {sink_job()}\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    lines = list(generate(GeneratorConfig(seed=4, days=1, events=3_000)))
    expected = replayed_reports(lines, tmp_path)
    gone = tmp_path / "stream-gone"
    with EmbeddedBroker() as broker, Pipeline(tmp_path, broker.bootstrap, "a.") as pipe:
        create_topics(broker.bootstrap, "a.", partitions=2)
        pipe.start_sink(metrics_port)
        pipe.start_worker()
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
            assert pipe.drained(120), pipe.tail()
            pipe.db.rename(gone)  # the disk went away: every write from now on fails
            pipe.db.write_text("")
            produce(broker.bootstrap, "a.", lines[half:])  # these writes fail and are retried

            def target_up() -> bool:
                targets = get_json(f"{api}/targets")["data"]["activeTargets"]
                return any(t["health"] == "up" for t in targets)

            wait_for(target_up, 30, "Prometheus to scrape the sink")

            def firing() -> list[dict]:  # type: ignore[type-arg]
                alerts = get_json(f"{api}/alerts")["data"]["alerts"]
                return [
                    a for a in alerts if a["labels"]["alertname"] == "ReelroiSinkFailing" and a["state"] == "firing"
                ]

            alerts = wait_for(firing, 240, "ReelroiSinkFailing to fire")
            assert alerts[0]["labels"]["severity"] == "page"
            assert "runbook_url" in alerts[0]["annotations"]
            assert pipe.sink is not None
            kill(pipe.sink, signal.SIGTERM)
            pipe.db.unlink()
            gone.rename(pipe.db)  # the disk is back
            pipe.start_sink(metrics_port)
            assert pipe.drained(180), pipe.tail()
            pipe.stop()
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
    assert reports(pipe.dsn, tmp_path) == expected  # the failed batches came through afterwards
