"""A real worker and the sink (subprocesses) on the embedded broker, both killed -9 again and again, converge to replay.

One worker and one sink, as on a single machine. After each quarter of the
events is produced, the worker and then the sink are killed with SIGKILL at a
random moment (mid-batch, mid-checkpoint, mid-write: no goodbye, no commit)
and started again. Once both groups have committed everything, the reports
equal those of a replay of the same lines.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from tests.streams.pipeline import CLI, Pipeline, replayed_reports, reports

pytestmark = pytest.mark.integration
__all__ = ["CLI"]


@pytest.fixture
def lines() -> list[bytes]:
    rows = list(generate(GeneratorConfig(seed=11, days=2, events=12_000, duplicate_share=0.03, malformed_share=0.01)))
    random.Random(5).shuffle(rows)  # out of order across topics: late clicks, refunds before payments
    return rows


def test_stream_with_kill_9_restarts_of_worker_and_sink_equals_replay(tmp_path: Path, lines: list[bytes]) -> None:
    expected = replayed_reports(lines, tmp_path)
    rnd = random.Random(3)
    chunks = [lines[i : i + len(lines) // 4] for i in range(0, len(lines), len(lines) // 4)]
    with (
        EmbeddedBroker() as broker,
        Pipeline(tmp_path, broker.bootstrap, "s.", {"REELROI_KAFKA_BATCH_MAX": "2000"}) as pipe,
    ):
        create_topics(broker.bootstrap, "s.", partitions=3)
        pipe.start(workers=1)
        for chunk in chunks:
            produce(broker.bootstrap, "s.", chunk)
            time.sleep(rnd.uniform(2.0, 6.0))  # somewhere in a batch or a checkpoint, or between
            pipe.restart_worker(0)  # kill -9: outputs sent but not checkpointed, records not acked
            time.sleep(rnd.uniform(0.5, 4.0))
            pipe.restart_sink()  # kill -9: facts written but not acked, or half a batch taken
        assert min(pipe.starts.values()) >= 5
        assert pipe.drained(240), pipe.tail()
        pipe.stop()
    got = reports(pipe.dsn, tmp_path)
    assert got["rejects"] == expected["rejects"], pipe.tail()
    assert got["roi"] == expected["roi"]
    assert got["commission"] == expected["commission"]
