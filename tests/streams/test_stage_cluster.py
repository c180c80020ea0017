"""Several worker processes and a sink on the real broker, killed at random, give the replay's reports.

Issue 10 point 7: three workers and a sink; workers joining and leaving under
load; kill -9 of a worker and of the sink at random moments, several times;
then the reports equal replay row for row. The workers share one checkpoint
directory (one machine); only the sink opens the embedded ClickHouse.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from tests.streams.pipeline import Pipeline, kill, replayed_reports, reports

pytestmark = pytest.mark.integration
PREFIX = "c."


def test_workers_and_sink_killed_at_random_equal_replay(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=23, days=3, events=20_000, duplicate_share=0.03, malformed_share=0.01)))
    random.Random(9).shuffle(lines)  # late clicks, refunds before payments, rates after the money
    expected = replayed_reports(lines, tmp_path)
    rnd = random.Random(4)
    chunks = [lines[i : i + len(lines) // 5] for i in range(0, len(lines), len(lines) // 5)]
    with (
        EmbeddedBroker() as broker,
        Pipeline(tmp_path, broker.bootstrap, PREFIX, {"REELROI_KAFKA_BATCH_MAX": "500"}) as pipe,
    ):
        create_topics(broker.bootstrap, PREFIX, partitions=4)
        pipe.start(workers=3)
        for i, chunk in enumerate(chunks):
            produce(broker.bootstrap, PREFIX, chunk)
            time.sleep(rnd.uniform(2.0, 6.0))  # mid-batch, mid-checkpoint, mid-rebalance
            pipe.restart_worker(rnd.randrange(len(pipe.workers)))  # kill -9: no goodbye, no checkpoint, no commit
            if i == 1:
                pipe.restart_sink()
            if i == 2:
                pipe.start_worker()  # one joins under load
            if i == 3:
                kill(pipe.workers.pop(0), signal.SIGTERM)  # and one leaves
        assert pipe.drained(240), pipe.tail()
        pipe.stop()
    got = reports(pipe.dsn, tmp_path)
    assert got["rejects"] == expected["rejects"], pipe.tail()
    assert got["roi"] == expected["roi"]
    assert got["commission"] == expected["commission"]
