"""Lines into Kafka from the collector's event loop: batched per partition, acknowledged by every replica.

Routing and batching are ``reelroi produce``'s own (streams/topics.py ``route``,
streams/produce.py ``Batcher`` and ``partition_of``: murmur2 of the key, as
Kafka's default partitioner), so a line lands on the partition ``produce`` or a
Java client would put it on. Only the client differs: aiokafka, because the
collector is an asyncio server and must not block its loop on acks.

``Publisher.publish`` is the POST path: it returns once every line is acknowledged
(acks=all). ``ClickQueue`` is the monitor path: a bounded buffer the request
handler appends to without waiting, flushed in batches by one task; when Kafka
is down the buffer fills and ``offer`` says no (the handler answers 503), so
memory never grows past ``capacity`` lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.produce import MAX_REQUEST_BYTES, Batch, Batcher, Batching, partition_of
from streams.topics import FAMILIES, route, topic_name

log = logging.getLogger("reelroi.collect")


class PublishError(Exception):
    """Kafka did not acknowledge every batch (some may have been taken: a retry makes duplicates, not losses)."""


class Publisher:
    """One aiokafka producer and the partition count of every family topic."""

    def __init__(self, bootstrap: str, prefix: str, batching: Batching, timeout_s: float = 15.0) -> None:
        self.prefix = prefix
        self.batching = batching
        self.timeout_s = timeout_s
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self.partitions: dict[str, int] = {}

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "Publisher.start() first"
        return self._producer

    async def start(self) -> None:
        """Connect (aiokafka wants its loop running) and read the partition count of every family topic."""
        producer = self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=2,
            max_batch_size=MAX_REQUEST_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
            request_timeout_ms=int(self.timeout_s * 1000),
            enable_idempotence=False,
        )
        await producer.start()
        for family in FAMILIES:
            topic = topic_name(self.prefix, family.name)
            self.partitions[topic] = len(await self.producer.partitions_for(topic) or ())

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def batches(self, lines: Iterable[bytes], now: float = 0.0) -> list[Batch]:
        """The lines grouped into message values per (topic, partition), as ``reelroi produce`` groups them."""
        batcher = Batcher(self.batching)
        closed: list[Batch] = []
        for line in lines:
            family, key = route(line)
            topic = topic_name(self.prefix, family)
            count = self.partitions.get(topic, 0)
            partition = partition_of(key, count) if key is not None and count else None
            closed += batcher.add(topic, partition, key, line, now)
        return closed + batcher.drain()

    async def send(self, batches: list[Batch]) -> list[Batch]:
        """Send every batch and wait for the acks; returns the batches that failed."""
        futures = []
        failed = []
        for batch in batches:
            try:
                futures.append(
                    (
                        batch,
                        await self.producer.send(batch.topic, batch.value(), key=batch.key, partition=batch.partition),
                    )
                )
            except KafkaError as exc:
                log.warning("send to %s failed: %s", batch.topic, exc)
                failed.append(batch)
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        for (batch, _), result in zip(futures, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("send to %s failed: %s", batch.topic, result)
                failed.append(batch)
        return failed

    async def publish(self, lines: list[bytes]) -> int:
        """Send ``lines`` and return once all are acknowledged; ``PublishError`` otherwise."""
        try:
            failed = await asyncio.wait_for(self.send(self.batches(lines)), self.timeout_s)
        except TimeoutError:
            raise PublishError(f"Kafka did not acknowledge within {self.timeout_s:g}s") from None
        if failed:
            raise PublishError(f"{sum(len(b.lines) for b in failed)} of {len(lines)} lines not acknowledged")
        return len(lines)


class ClickQueue:
    """A bounded in-memory buffer of lines, flushed in batches by one task, retried until Kafka takes them."""

    def __init__(self, publisher: Publisher, capacity: int, linger_s: float) -> None:
        self.publisher = publisher
        self.capacity = capacity
        self.linger_s = linger_s
        self.waiting: deque[bytes] = deque()
        self.in_flight = 0  # lines taken from ``waiting`` and not yet acknowledged
        self.sent = 0
        self.closed = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def depth(self) -> int:
        return len(self.waiting) + self.in_flight

    def offer(self, line: bytes) -> bool:
        """Queue one line; False when the buffer is full (Kafka slow or down) or the queue is closing."""
        if self.closed or len(self.waiting) + self.in_flight >= self.capacity:
            return False
        self.waiting.append(line)
        if len(self.waiting) == 1:
            self._wake.set()
        return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="collect-clicks")

    async def close(self, timeout_s: float) -> int:
        """Stop taking lines, flush what is buffered (at most ``timeout_s``); returns the lines left unsent."""
        self.closed = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
        return self.depth()

    async def _run(self) -> None:
        while True:
            if not self.waiting:
                if self.closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self.waiting) < self.publisher.batching.lines and not self.closed:
                await asyncio.sleep(self.linger_s)  # let a batch fill: the linger of SPEC 2 batching
            lines = list(self.waiting)
            self.waiting.clear()
            self.in_flight = len(lines)
            await self._deliver(self.publisher.batches(lines, time.monotonic()))
            self.sent += len(lines)
            self.in_flight = 0

    async def _deliver(self, batches: list[Batch]) -> None:
        backoff = 0.1
        while batches:
            batches = await self.publisher.send(batches)
            if batches:
                log.warning(
                    "%d click lines not acknowledged; retrying in %.1fs", sum(len(b.lines) for b in batches), backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
