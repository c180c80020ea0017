"""The sink stage (``reelroi sink``): the facts topic into ClickHouse, docs/design/streaming.md section 5.

Every stage publishes its outputs as fact lines to ``<prefix>facts``; this is
the one process that writes them. It reads the topic in its own consumer
group (``<REELROI_KAFKA_GROUP>-sink``) with ``noack_take`` batches, decodes
each message's lines, writes the whole batch with ``write_facts`` (large
column blocks, every row under its own version) and acknowledges the batch's
records only after that write. A failed write is retried with backoff for
ever, neither acked nor dropped: facts wait in Kafka while ClickHouse is down.
Delivery is at-least-once, and harmless: a table keeps, per key, the row of
the greatest version, so a batch written twice (after a crash, a rebalance)
changes nothing.

A line that is not a fact is logged with its origin and counted
(``reelroi_sink_bad_facts_total``); it never stops the sink.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

import faust
from prometheus_client import Counter, Histogram
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.errors import SinkError
from attribution.stages.facts import Fact, decode
from sinks.writer import ClickHouseSink
from streams import metrics
from streams.codecs import undecodable
from streams.kafka_settings import KafkaSettings
from streams.stage_metrics import born_at, observe_lag
from streams.stage_worker import faust_app
from streams.topics import FACTS_TOPIC, topic_name

log = logging.getLogger("reelroi.sink")
STAGE = "sink"  # the stage label of the shared ClickHouse write metrics

FACTS = Counter("reelroi_sink_facts", "Facts written to ClickHouse by the sink, by kind", ["kind"])
BAD_FACTS = Counter("reelroi_sink_bad_facts", "Lines of the facts topic that are not facts (logged, skipped)")
BATCH_SECONDS = Histogram(
    "reelroi_sink_batch_seconds",
    "From taking a batch of the facts topic to acknowledging it (decoding, writing, retries)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


class SinkSettings(BaseSettings):
    """``REELROI_SINK_*``: how large a batch the sink takes.

    A batch holds at most ``batch_messages`` Kafka messages, each a batch of
    fact lines of up to about 1 MiB (streams/produce.py ``BATCH_BYTES_LIMIT``):
    that product bounds the sink's memory. Stages send few, large messages,
    so even a few hundred make a block of many thousand rows.
    """

    model_config = SettingsConfigDict(env_prefix="REELROI_SINK_", extra="ignore")

    batch_messages: int = 64  # a facts message holds up to ~1 MiB of lines
    batch_within_s: float = 1.0


def facts_topic(prefix: str) -> str:
    return topic_name(prefix, FACTS_TOPIC)


def decode_lines(origin: str, value: bytes | None) -> tuple[list[Fact], list[str]]:
    """The facts of one message (blank lines skipped), and a note for each line that is not one."""
    facts: list[Fact] = []
    bad: list[str] = []
    for n, line in enumerate((value or b"").split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            facts.append(decode(line))
        except ValueError as exc:
            bad.append(f"{origin} line {n}: {exc}: {line[:120]!r}")
    return facts, bad


def decode_messages(messages: Iterable[Any]) -> list[Fact]:
    """Every fact in a batch of Kafka messages, in order; what is not a fact is logged and counted."""
    facts: list[Fact] = []
    for m in messages:
        origin = f"{m.topic}:{m.partition}:{m.offset}"
        reason = undecodable(m)
        if reason:  # a record batch no codec could decode, standing in for all of it (streams/codecs.py)
            BAD_FACTS.inc()
            log.error("bad facts at %s: an undecodable record batch (%s), skipped", origin, reason)
            continue
        found, bad = decode_lines(origin, m.value)
        facts.extend(found)
        for note in bad:
            BAD_FACTS.inc()
            log.error("bad fact at %s, skipped", note)
    return facts


class Backoff:
    """Delays between tries of a failing write: 1 s, doubling, at most 30 s."""

    def __init__(self, first: float = 1.0, most: float = 30.0) -> None:
        self.first, self.most = first, most
        self.delay = 0.0

    async def failed(self, exc: BaseException) -> None:
        metrics.SINK_FAILURES.labels(STAGE).inc()
        self.delay = min(self.most, self.delay * 2 or self.first)
        log.error("facts write failed, retrying in %.0fs (nothing is acked meanwhile): %s", self.delay, exc)
        await asyncio.sleep(self.delay)
        metrics.SINK_RETRIES.labels(STAGE).inc()

    def succeeded(self) -> None:
        self.delay = 0.0


def write(sink: ClickHouseSink, facts: list[Fact], lock: threading.Lock) -> int:
    """One ``write_facts`` call for the batch under ``lock``, timed; the metrics count only a write that succeeded."""
    started = time.perf_counter()
    with lock:  # the client is not thread-safe: the business watcher reads through it between writes
        written = sink.write_facts(facts)
    metrics.SINK_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
    for kind, n in Tally(f.kind for f in facts).items():
        FACTS.labels(kind).inc(n)
    return written


async def write_until_written(
    sink: ClickHouseSink, facts: list[Fact], backoff: Backoff, lock: threading.Lock | None = None
) -> int:
    """Write ``facts``, trying again after every ``SinkError`` for as long as it takes.

    Off the event loop, so heartbeats keep flowing. Nothing is dropped and, since
    the caller acks only after this returns, nothing unwritten is acked. ``lock``
    is held during each try, never during the pauses.
    """
    client_lock = lock or threading.Lock()
    while True:
        try:
            written = await asyncio.to_thread(write, sink, facts, client_lock)
        except SinkError as exc:  # retry for ever; ReelroiSinkFailing pages
            await backoff.failed(exc)
            continue
        backoff.succeeded()
        return written


def build_sink_app(
    kafka: KafkaSettings,
    sink: ClickHouseSink,
    settings: SinkSettings | None = None,
    lock: threading.Lock | None = None,
) -> faust.App:
    """The faust app of one sink: one agent on the facts topic, writing through ``sink``.

    ``lock`` is held around every use of the sink's client: pass the one that the
    other users of that client in this process (the business watcher) hold.
    """
    settings = settings or SinkSettings()
    client_lock = lock or threading.Lock()
    # the settings every reelroi consumer uses (codecs installed: an undecodable batch is skipped, not a crash)
    app = faust_app(kafka, f"{kafka.group}-sink", settings.batch_messages)
    source = app.topic(facts_topic(kafka.topic_prefix), value_type=bytes, key_type=bytes, partitions=kafka.partitions)

    @app.agent(source, concurrency=1)
    async def write_facts(stream: faust.StreamT[bytes]) -> None:
        backoff = Backoff()
        batches = stream.noack_take(settings.batch_messages, within=settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:  # events, not values: noack_take buffers the events to ack
            started = time.perf_counter()
            facts = await asyncio.to_thread(decode_messages, [e.message for e in events])
            await write_until_written(sink, facts, backoff, client_lock)
            written = time.time()
            for event in events:
                await stream.ack(event)  # event.ack(), and faust's sensors told
                born = born_at(event.message)
                if born is not None:  # from the input record's append to its facts in ClickHouse
                    metrics.FRESHNESS.observe(max(0.0, written - born))
            metrics.LAST_BATCH.set(written)
            BATCH_SECONDS.observe(time.perf_counter() - started)

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def observe() -> None:
        """Consumer lag of the facts partitions this sink holds (``reelroi_consumer_lag``, as ``reelroi lag``)."""
        await observe_lag(app, f"{kafka.group}-sink")

    return app


def serve_sink_metrics(port: int) -> int:
    """Serve ``/metrics`` on ``port`` (host and token as ``REELROI_METRICS_*`` say; 0: off).

    Its own port (``reelroi sink --metrics-port``, default 9109), not the worker's
    9108: a sink and a worker often share a machine.
    """
    metrics.SINK_FAILURES.labels(STAGE)  # at 0 from the start, so increase() sees the first failure
    metrics.SINK_RETRIES.labels(STAGE)
    BAD_FACTS.inc(0)
    return metrics.serve_metrics(metrics.MetricsSettings(port=port))
