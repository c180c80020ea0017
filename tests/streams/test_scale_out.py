"""Several workers in one consumer group, joining and leaving under load, equal one replay.

The workers run in one process (tests/streams/group_harness.py) because the
embedded ClickHouse is one process at a time; each has its own faust app, Kafka
consumer and group membership on the real broker.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from tests.streams.test_worker import replayed_reports, reports

pytestmark = pytest.mark.integration
HARNESS = Path(__file__).with_name("group_harness.py")


def produce_over(bootstrap: str, prefix: str, lines: list[bytes], seconds: float) -> threading.Thread:
    """Produce ``lines`` in 20 chunks spread over ``seconds`` (a stream, not a preload)."""

    def run() -> None:
        step = max(1, len(lines) // 20)
        for i in range(0, len(lines), step):
            produce(bootstrap, prefix, lines[i : i + step])
            time.sleep(seconds / 20)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_workers_joining_and_leaving_under_load_equal_replay(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=23, days=2, events=16_000, duplicate_share=0.03, malformed_share=0.01)))
    random.Random(8).shuffle(lines)
    expected = replayed_reports(lines, tmp_path)

    result_path = tmp_path / "group.json"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "g.", partitions=4)
        # worker-0 leads from the start; worker-1 and worker-2 join while events flow
        # (rebalances under load); worker-0 leaves, so intake AND attribution move
        harness = subprocess.Popen(
            [
                sys.executable, str(HARNESS), "--db", str(tmp_path / "stream"), "--bootstrap", broker.bootstrap,
                "--prefix", "g.", "--start", "0", "--start", "10", "--start", "22", "--stop", "0@34",
                "--idle", "15", "--out", str(result_path),
            ],
            stderr=(tmp_path / "harness.log").open("wb"),
        )  # fmt: skip
        time.sleep(3)
        producer = produce_over(broker.bootstrap, "g.", lines, seconds=40)
        producer.join()
        assert harness.wait(timeout=300) == 0, (tmp_path / "harness.log").read_text()[-3000:]
    result = json.loads(result_path.read_text())
    log = (tmp_path / "harness.log").read_text()[-3000:]

    assert all(w["partitions_taken"] for w in result["workers"]), result  # every member took intake
    assert len(result["leaders"]) >= 2 and result["leaders"][0] == "worker-0", result  # attribution moved
    assert result["leaders"][-1] != "worker-0", result
    got = reports(f"chdb://{tmp_path / 'stream'}", tmp_path)
    assert got["rejects"] == expected["rejects"], log
    assert got["roi"] == expected["roi"], log
    assert got["commission"] == expected["commission"], log
