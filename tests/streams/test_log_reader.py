"""A stage partition's messages read from the real broker's log, and a state caught up from it (streams/log_reader.py).

``StageRunner.catch_up`` reads, with a consumer of its own, the messages
between a state's position and a message that came past it (a partition
reloaded by a rebalance while later messages were buffered, a committed
offset past a lost checkpoint), so the state is the one its messages in
order give.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer
from prometheus_client import REGISTRY

from streams.broker import EmbeddedBroker
from streams.log_reader import LogReader
from streams.produce import create_topics
from streams.topics import topic_name
from tests.unit.test_stage_runner import _outbox, _runner, _state, _traffic

pytestmark = pytest.mark.integration
PREFIX = "r."


def test_a_state_caught_up_from_the_log_equals_the_one_its_messages_in_order_give(tmp_path: Path) -> None:
    topic = topic_name(PREFIX, "stage.user")
    events = _traffic(12, topic)
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, PREFIX, partitions=2)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=50)
        for event in events:
            producer.send(topic, value=event.message.value, partition=0)
        producer.flush()
        producer.close()
        read = LogReader(broker.bootstrap)
        logged = list(read(topic, 0, 0, 100))
        assert logged == [(i, e.message.value) for i, e in enumerate(events)]  # the offsets of the events here
        assert list(read(topic, 0, 3, 9)) == logged[3:9]
        assert list(read(topic, 0, 9, 9)) == []
        assert list(read(topic, 1, 0, 1)) == []  # nothing there: a hole, for the caller to count

        straight = _runner(tmp_path / "a")
        straight.apply(events, _outbox())
        runner = _runner(tmp_path / "b", read)
        runner.apply(events[:4], _outbox())
        runner.save(0)
        runner.drop(0)
        holes = REGISTRY.get_sample_value("reelroi_stage_log_holes_total", {"stage": "user"}) or 0.0
        runner.apply(events[8:], _outbox())  # past the checkpoint at 4: 4-7 come from the log
        assert _state(runner) == _state(straight)
        assert (REGISTRY.get_sample_value("reelroi_stage_log_holes_total", {"stage": "user"}) or 0.0) == holes
