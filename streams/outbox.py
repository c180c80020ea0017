"""Stage outputs bound for Kafka: lines per (topic, partition), sent as batched messages and awaited."""

from __future__ import annotations

import asyncio
import logging

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from attribution.stages import facts as fact_codec
from attribution.stages import wire
from attribution.stages.facts import Fact
from attribution.stages.records import BROADCAST, Emit
from streams import stage_metrics as sm
from streams.produce import BATCH_BYTES_LIMIT, partition_of
from streams.topics import FACTS_TOPIC, topic_name

log = logging.getLogger("reelroi.stages")


class Outbox:
    """Lines bound for (topic, partition), sent as batched messages; ``deliver`` waits for the acks.

    ``counts`` are the topics' real partition counts (read from the broker at start): records are
    partitioned by them, whatever ``REELROI_KAFKA_PARTITIONS`` says.
    """

    def __init__(self, app: faust.App, prefix: str, counts: dict[str, int]) -> None:
        self.app, self.prefix, self.counts = app, prefix, counts
        self._lines: dict[tuple[str, int], list[bytes]] = {}
        self._facts_topic = topic_name(prefix, FACTS_TOPIC)
        self.born: float | None = None  # when the oldest input behind the pending lines reached Kafka
        self._partitions: dict[tuple[str, int], int] = {}

    def emits(self, emits: list[Emit]) -> None:
        for emit in emits:
            topic = topic_name(self.prefix, emit.topic)
            line = wire.encode(emit.record)
            n = self.counts[topic]
            if emit.partition == BROADCAST:
                for p in range(n):
                    self._lines.setdefault((topic, p), []).append(line)
            elif emit.partition is not None:
                self._lines.setdefault((topic, emit.partition), []).append(line)
            else:
                self._lines.setdefault((topic, self._partition(emit.record.route, n)), []).append(line)

    def _partition(self, route: str, n: int) -> int:
        """``partition_of`` (kafka-python's murmur2, pure Python) remembered per key: keys repeat a lot."""
        cache = self._partitions
        found = cache.get((route, n))
        if found is None:
            if len(cache) > 500_000:
                cache.clear()
            found = cache[(route, n)] = partition_of(route.encode("utf-8", "surrogatepass"), n)
        return found

    def facts(self, facts: list[Fact], partition: int) -> None:
        if facts:
            lines = self._lines.setdefault((self._facts_topic, partition % self.counts[self._facts_topic]), [])
            lines.extend(fact_codec.encode(f) for f in facts)

    def __len__(self) -> int:
        return sum(len(v) for v in self._lines.values())

    async def deliver(self) -> None:
        """Send every pending line and wait until the broker has them all (acks=all), retrying for ever.

        Nothing is acked before this returns, so a send that fails is retried
        whole (the broker may then hold a message twice: stages ignore a copy of
        a record they have, by position of the first, or by its origin).
        """
        delay = 0.0
        headers = None if self.born is None else [(sm.BORN_HEADER, str(int(self.born * 1000)).encode())]
        while self._lines:
            try:
                futures = []
                for (topic, p), lines in self._lines.items():
                    for value in _chunks(lines):
                        futures.append(await self.app.producer.send(topic, None, value, p, None, headers))
                await asyncio.gather(*futures)
                self._lines = {}
            except (KafkaError, ProducerSendError, AssertionError, OSError) as exc:  # broker away or refusing
                delay = min(15.0, delay * 2 or 0.5)
                sm.SEND_FAILURES.inc()
                log.error("sending stage outputs failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
        self.born = None


def _chunks(lines: list[bytes]) -> list[bytes]:
    """Message values of at most ``BATCH_BYTES_LIMIT`` bytes (a longer line alone)."""
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and size + len(line) + 1 > BATCH_BYTES_LIMIT:
            out.append(b"\n".join(batch))
            batch, size = [], 0
        batch.append(line)
        size += len(line) + 1
    if batch:
        out.append(b"\n".join(batch))
    return out
