"""The sink process owns the database, so it runs the business watcher and saves the policy settings.

A worker and a sink on the embedded broker; the sink has a metrics port, a
token and a one-second watcher. Its ``/metrics/business`` must show the
revenue of the facts it wrote (the watcher reads through the client the
writes use, under one lock, while they go on), and, stopped, the database
must hold the policy the sink was given (the reports' windows).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from attribution import testing as kit
from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker, free_port
from streams.produce import create_topics, produce
from tests.streams.pipeline import Pipeline, wait_for

pytestmark = pytest.mark.integration
TOKEN = "sink-watcher-token"


def business(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics/business", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):  # not listening yet
        return ""


def test_the_sink_runs_the_watcher_and_saves_the_policy(tmp_path: Path) -> None:
    port = free_port()
    lines = [
        kit.campaign(campaign_id="c1", platform="douyin"),
        kit.spend(campaign_id="c1", amount="100"),
        kit.click(campaign_id="c1", click_id="k1"),
        kit.redirect(user_id="u1", click_id="k1"),
        kit.payment(user_id="u1", order_id="o1", amount="30.00"),
    ]
    traffic = list(generate(GeneratorConfig(seed=3, days=1, events=2_000)))  # writes go on while the watcher reads
    env = {"REELROI_METRICS_TOKEN": TOKEN, "REELROI_WATCH_INTERVAL_S": "1"}
    with EmbeddedBroker() as broker, Pipeline(tmp_path, broker.bootstrap, "w.", env) as pipe:
        create_topics(broker.bootstrap, "w.", partitions=2)
        pipe.start_sink(port, "--click-window", "3d", "--view-window", "12h")
        pipe.start_worker()
        produce(broker.bootstrap, "w.", [line + b"\n" for line in lines])
        wait_for(
            lambda: 'reelroi_revenue_attributed{platform="douyin",source_kind="campaign"} 30.0' in business(port),
            120,
            "the watcher's revenue on the sink's /metrics/business",
        )
        produce(broker.bootstrap, "w.", traffic)
        assert pipe.drained(120), pipe.tail()
        assert "reelroi_watcher_last_success_timestamp_seconds" in business(port)
        assert pipe.running(), pipe.tail()
        pipe.stop()
    text = pipe.tail(10**7)
    assert "business signals refresh failed" not in text and "Traceback" not in text, text[-3000:]
    read = (
        "import json, sys; from sinks.connection import connect, database_of; from sinks.writer import load_settings;"
    )
    read += "print(json.dumps(load_settings(connect(sys.argv[1]), database_of(sys.argv[1]))))"
    done = subprocess.run(
        [sys.executable, "-c", read, pipe.dsn], capture_output=True, check=True
    )  # chdb: a process each
    settings = json.loads(done.stdout)
    assert (settings["policy.click_window"], settings["policy.view_window"]) == ("3d", "12h"), settings
