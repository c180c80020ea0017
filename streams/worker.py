"""The faust-streaming worker: Kafka batches through the same engine and sink as replay.

One agent reads every family topic with ``noack_take`` (a bounded batch, a
time bound), hands the batch to ``Engine.process`` and the outputs to
``ClickHouseSink.write``, and acknowledges the batch only after ClickHouse has
it. Concurrency stays 1 (faust issue #606) and the processing guarantee is
at-least-once with idempotent writes (#517, #323).

Restart safety: the sink writes the event log *last*, so an event in the log
has all its facts written. On start the engine state is rebuilt from the log,
and records the log already holds (redelivered after a crash) are skipped by
their Kafka origin; everything else is processed again, idempotently.

State is one engine per worker: this release runs ONE worker per consumer
group for attribution (see README, "Streaming"); more workers in the group
would each see a subset of partitions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import time
from typing import Any

import faust
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.engine import Engine, Record
from attribution.outputs import Outputs
from attribution.policy import Policy
from sinks.writer import ClickHouseSink
from streams.topics import FAMILIES, dead_letter_topic, topic_name

log = logging.getLogger("reelroi.worker")


class KafkaSettings(BaseSettings):
    """``REELROI_KAFKA_*``: where the topics are and how the worker batches."""

    model_config = SettingsConfigDict(env_prefix="REELROI_KAFKA_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"
    exit_when_idle_s: float = 0.0  # benchmarks: stop after this long without records, write stats
    stats_path: str = ""
    topic_prefix: str = "reelroi."
    group: str = "reelroi-attribution"
    partitions: int = 6
    batch_max: int = 20_000
    batch_within_s: float = 0.5
    rebalance_timeout_s: float = 6.0


def origin_of(event: Any) -> str:
    message = event.message
    return f"kafka:{message.topic}:{message.partition}:{message.offset}"


class Pipeline:
    """The part of the worker that is not faust: rebuild, process a batch, write."""

    def __init__(self, sink: ClickHouseSink, policy: Policy) -> None:
        self.sink = sink
        self.policy = policy
        self.engine = Engine(policy)
        self.logged_origins: set[str] = set()
        self.batches = 0
        self.events = 0
        self.first_batch_at: float | None = None
        self.last_batch_at: float | None = None
        self.freshness_s: list[float] = []  # produce time -> written, one per record

    def rebuild(self) -> int:
        """Load every logged event into the engine and rewrite every derived row from it.

        A worker killed in the middle of a write can leave rows of a batch whose
        events never reached the log; the engine rebuilt from the log knows nothing
        of them. So the rebuild writes all facts afresh under a new version and
        deletes whatever is older; the unacknowledged batch then comes again.
        """
        start = self.sink.clock.next()
        count = 0
        rewrite = ClickHouseSink(self.sink.client, self.sink.db, self.sink.clock, log_events=False)
        for page in self.sink.logged_events():
            rewrite.write(self.engine.process([Record(origin, raw) for origin, raw in page]))
            self.logged_origins.update(origin for origin, _ in page if origin.startswith("kafka:"))
            count += len(page)
        self.sink.drop_derived_older_than(start)
        return count

    def process(self, records: list[Record], produced_at: list[float] | None = None) -> Outputs:
        """Engine outputs for the records not already in the log (redeliveries skipped).

        ``produced_at`` (Kafka timestamps, epoch seconds) feeds the freshness figures.
        """
        if self.first_batch_at is None:
            self.first_batch_at = time.time()
        if self.logged_origins:
            fresh = [r for r in records if r.origin not in self.logged_origins]
            self.logged_origins.difference_update(r.origin for r in records)
        else:
            fresh = records
        out = self.engine.process(fresh)
        self.sink.write(out)
        written = self.last_batch_at = time.time()
        if produced_at:
            self.freshness_s.extend(written - t for t in produced_at)
        self.batches += 1
        self.events += len(records)
        return out

    def stats(self) -> dict[str, float]:
        elapsed = (self.last_batch_at or 0.0) - (self.first_batch_at or 0.0)
        fresh = sorted(self.freshness_s)

        def pct(q: float) -> float:
            return fresh[min(len(fresh) - 1, int(q * len(fresh)))] if fresh else 0.0

        return {
            "events": self.events,
            "batches": self.batches,
            "seconds": elapsed,
            "events_per_s": self.events / elapsed if elapsed > 0 else 0.0,
            "freshness_p50_s": pct(0.50),
            "freshness_p99_s": pct(0.99),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def build_app(settings: KafkaSettings, pipeline: Pipeline) -> faust.App:
    app = faust.App(
        settings.group,
        broker=f"kafka://{settings.bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.batch_max),
        consumer_max_fetch_size=16 * 1024 * 1024,
        broker_max_poll_records=settings.batch_max,
        producer_linger=0.05,
        # Tansu completes a join only when the rebalance timeout allows; a short
        # one makes start-up and failover take seconds, not a minute
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=1.0,
    )
    names = [topic_name(settings.topic_prefix, f.name) for f in FAMILIES]
    source = app.topic(*names, value_type=bytes, key_type=bytes)
    dead_letters = app.topic(dead_letter_topic(settings.topic_prefix), value_type=bytes, key_type=bytes)

    @app.task  # type: ignore[untyped-decorator]
    async def rebuild() -> None:
        count = await asyncio.to_thread(pipeline.rebuild)
        log.warning("engine state rebuilt from %d logged events", count)
        ready.set()

    ready = asyncio.Event()

    @app.agent(source, concurrency=1)
    async def attribute(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()
        batches = stream.noack_take(settings.batch_max, within=settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            records = [Record(origin_of(e), e.value) for e in events]
            produced = [e.message.timestamp for e in events]
            # CPU and ClickHouse work off the event loop, so heartbeats keep flowing
            out = await asyncio.to_thread(pipeline.process, records, produced)
            for rejection in out.rejections:
                if rejection.active and rejection.structural:
                    await dead_letters.send(
                        value=rejection.raw,
                        headers={"reason": rejection.reason.encode(), "origin": rejection.origin.encode()},
                    )
            for event in events:
                await stream.ack(event)

    if settings.exit_when_idle_s > 0:

        @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
        async def stop_when_idle() -> None:
            last = pipeline.last_batch_at
            if last is not None and time.time() - last > settings.exit_when_idle_s:
                if settings.stats_path:
                    with open(settings.stats_path, "w", encoding="utf-8") as handle:
                        json.dump(pipeline.stats(), handle)
                os.kill(os.getpid(), signal.SIGTERM)  # the faust Worker's own clean shutdown

    return app
