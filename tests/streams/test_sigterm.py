"""While every ClickHouse write fails, the workers keep attributing, SIGTERM stops the sink promptly, and nothing is lost.

The sink's database directory is moved away under it and a file takes its
place (a disk that went away), so its writes fail for real and are retried.
The workers never open ClickHouse: their group goes on committing the input
and stage topics to their ends while the facts wait in Kafka. SIGTERM must
still end the failing sink within seconds; with the directory back, a new sink
writes every fact and the reports equal a replay.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.lag import LagReader
from streams.produce import create_topics, produce
from streams.topics import FACTS_TOPIC, STAGE_TOPICS, topic_name
from tests.streams.pipeline import (
    GROUP,
    Pipeline,
    committed,
    kill,
    replayed_reports,
    reports,
    wait_for,
    workers_drained,
)

pytestmark = pytest.mark.integration
PREFIX = "t."


def stage_offsets(bootstrap: str) -> int:
    """The sum of the workers' committed offsets over every stage topic partition."""
    stages = {topic_name(PREFIX, t) for t in STAGE_TOPICS}
    return sum(n for (topic, _), n in committed(bootstrap, PREFIX).items() if topic in stages)


def facts_behind(bootstrap: str) -> int:
    """Facts the sink's group has not committed."""
    reader = LagReader(bootstrap, PREFIX, GROUP + "-sink")
    reader.topics = [topic_name(PREFIX, FACTS_TOPIC)]
    try:
        done = reader.committed()
        return sum(max(0, end - done.get(tp, 0)) for tp, end in reader.ends().items())
    finally:
        reader.close()


def test_sigterm_stops_the_sink_while_writes_fail_and_the_workers_go_on(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=8, days=1, events=3_000)))
    expected = replayed_reports(lines, tmp_path)
    gone = tmp_path / "stream-gone"
    with EmbeddedBroker() as broker, Pipeline(tmp_path, broker.bootstrap, PREFIX) as pipe:
        create_topics(broker.bootstrap, PREFIX, partitions=2)
        sink = pipe.start(workers=2).sink
        assert sink is not None
        produce(broker.bootstrap, PREFIX, lines[:1500])
        assert pipe.drained(120), pipe.tail()
        pipe.db.rename(gone)  # the disk went away: a file in its place, so nothing can be written under it
        pipe.db.write_text("")
        before = stage_offsets(broker.bootstrap)
        produce(broker.bootstrap, PREFIX, lines[1500:])
        wait_for(lambda: pipe.tail(10**7).count("facts write failed") >= 2, 60, "two failed writes")
        # the workers' group drains the input and stage topics all the same; the facts wait
        assert workers_drained(broker.bootstrap, PREFIX, 120), pipe.tail()
        assert stage_offsets(broker.bootstrap) > before
        assert facts_behind(broker.bootstrap) > 0
        assert pipe.running(), pipe.tail()
        assert kill(sink, signal.SIGTERM, timeout=40) < 15, pipe.tail()
        pipe.db.unlink()
        gone.rename(pipe.db)
        pipe.start_sink()
        assert pipe.drained(180), pipe.tail()
        assert facts_behind(broker.bootstrap) == 0
        pipe.stop()
    assert reports(pipe.dsn, tmp_path) == expected
