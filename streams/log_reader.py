"""A stage partition's messages read straight from the log, for a state that a message came past.

``StageRunner.catch_up`` (streams/stage_runner.py) calls it from the agent's
worker thread. A consumer of its own (no group, nothing committed) reads the
range and is closed: faust's consumer, its positions and its acks are not
touched. It waits for the broker as long as it takes, like the stages' sends:
a stage cannot go on without those messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

log = logging.getLogger("reelroi.stages")


class LogReader:
    """``read(topic, partition, first, end)``: (offset, value) from ``first`` (or the log's start) up to ``end``."""

    def __init__(self, bootstrap: str, fetch_bytes: int = 16 * 1024 * 1024) -> None:
        self.bootstrap, self.fetch_bytes = bootstrap, fetch_bytes

    def __call__(self, topic: str, partition: int, first: int, end: int) -> Iterator[tuple[int, bytes | None]]:
        tp = TopicPartition(topic, partition)
        delay = 0.0
        while True:
            try:
                consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                    auto_offset_reset="earliest", max_partition_fetch_bytes=self.fetch_bytes,
                    fetch_max_bytes=self.fetch_bytes,
                )  # fmt: skip
                break
            except KafkaError as exc:  # the broker away: wait for it, as the sends do
                delay = min(15.0, delay * 2 or 0.5)
                log.error("reading %s[%d] from the log: %r, retrying in %.1fs", topic, partition, exc, delay)
                time.sleep(delay)
        try:
            consumer.assign([tp])
            start = max(first, consumer.beginning_offsets([tp])[tp])
            consumer.seek(tp, start)
            at = start
            while at < end:
                for record in consumer.poll(timeout_ms=1000).get(tp, ()):
                    if record.offset >= end:
                        return
                    if record.offset >= at:
                        yield record.offset, record.value
                        at = record.offset + 1
                highwater = consumer.highwater(tp)  # known once a fetch answered (the true one, unlike Tansu's list)
                if highwater is not None and consumer.position(tp) >= highwater:
                    return  # the log has nothing more: the rest of the range is gone
        finally:
            consumer.close()


__all__ = ["LogReader"]
