"""The faust-streaming worker: intake on every worker, attribution on the leader.

Intake: one agent reads every family topic with ``noack_take`` (a bounded
batch, a time bound), appends the records whole to ClickHouse's ``intake``
table and acknowledges them only after that write. Concurrency stays 1 (faust
issue #606) and delivery is at-least-once: intake is keyed by Kafka position,
so a record written twice is one row (#517, #323). Workers in one consumer
group split the partitions between them; that is the part that scales out.

Attribution: the worker that holds faust's leader partition runs the one
``Attributor`` (see streams/attributor.py for why attribution is not split by
key), which reads intake in offset order, drives the same engine as replay and
writes through the same sink. When leadership moves (a rebalance, a crash),
the new leader rebuilds from the event log and continues from the saved
offsets; an epoch fence stops a former leader from writing over it.

A failed ClickHouse write is retried with backoff for ever: the batch is
neither acknowledged nor dropped, the partition waits, and the
``ReelroiSinkFailing`` alert tells someone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field

import faust

from attribution.errors import SinkError
from attribution.outputs import Outputs
from attribution.policy import Policy
from schemas.framing import DEFAULT_MAX_LINE_BYTES
from sinks.intake import IntakeRecord, IntakeStore
from sinks.writer import ClickHouseSink
from streams import metrics
from streams.attributor import Attributor, Fenced
from streams.codecs import install as install_codecs
from streams.codecs import undecodable
from streams.kafka_settings import KafkaSettings
from streams.topics import FAMILIES, dead_letter_topic, topic_name

log = logging.getLogger("reelroi.worker")


@dataclass
class Worker:
    """A built worker: the faust app and the attributor it runs while it leads."""

    app: faust.App
    attributor: Attributor
    settings: KafkaSettings
    consumed: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset per partition taken


class _Backoff:
    """Retry delays for a failing ClickHouse write: 0.5 s doubling to 15 s, counted per stage."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.delay = 0.0

    async def failed(self, exc: BaseException) -> None:
        metrics.SINK_FAILURES.labels(self.stage).inc()
        self.delay = min(15.0, self.delay * 2 or 0.5)
        log.error("%s write failed, retrying in %.1fs: %s", self.stage, self.delay, exc)
        await asyncio.sleep(self.delay)
        metrics.SINK_RETRIES.labels(self.stage).inc()

    def succeeded(self) -> None:
        self.delay = 0.0


def build_app(
    settings: KafkaSettings,
    sink: ClickHouseSink,
    policy: Policy,
    lock: threading.Lock | None = None,
    name: str | None = None,
    max_line: int = DEFAULT_MAX_LINE_BYTES,
) -> Worker:
    """The faust app of one worker. ``lock`` serialises use of the ClickHouse client."""
    install_codecs()  # every codec decodable, and an undecodable batch becomes a rejection, not a crash
    lock = lock or threading.Lock()
    name = name or f"{socket.gethostname()}:{os.getpid()}"
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
        # faust would otherwise wait, at a rebalance or shutdown, for every taken record to be
        # acked; a batch retrying a failing write never is, and SIGTERM went unheard. Records
        # not acked are redelivered to the next owner and intake keys them by position.
        stream_wait_empty=False,
    )
    attributor = Attributor(
        sink,
        policy,
        lock,
        name,
        on_batch=metrics.count_batch,
        keep_freshness=bool(settings.stats_path),
        max_line=max_line,
        page_lines=settings.attribution_lines,
    )
    worker = Worker(app, attributor, settings)
    store = IntakeStore(sink.client, sink.db)
    family_topics = {topic_name(settings.topic_prefix, f.name) for f in FAMILIES}
    source = app.topic(*sorted(family_topics), value_type=bytes, key_type=bytes)
    dead_letters = app.topic(dead_letter_topic(settings.topic_prefix), value_type=bytes, key_type=bytes)

    def append(records: list[IntakeRecord]) -> None:
        with lock:
            started = time.perf_counter()
            store.append(records, sink.clock.next())
        metrics.SINK_SECONDS.labels("intake").observe(time.perf_counter() - started)

    @app.agent(source, concurrency=1)
    async def intake(stream: faust.StreamT[bytes]) -> None:
        batches = stream.noack_take(settings.batch_max, within=settings.batch_within_s)  # type: ignore[attr-defined]
        backoff = _Backoff("intake")
        async for events in batches:
            records = [  # a null value (a tombstone) is kept as no bytes and rejected downstream
                IntakeRecord(m.topic, m.partition, m.offset, int(m.timestamp * 1000), m.value or b"", undecodable(m))
                for e in events
                for m in (e.message,)
            ]
            while True:  # off the event loop, so heartbeats keep flowing; never drop, never ack unwritten
                try:
                    await asyncio.to_thread(append, records)
                    backoff.succeeded()
                    break
                except SinkError as exc:  # retry for ever; ReelroiSinkFailing pages
                    await backoff.failed(exc)
            for r in records:
                worker.consumed[(r.topic, r.partition)] = r.offset + 1
            metrics.count_intake(records, settings.topic_prefix)
            for event in events:
                await stream.ack(event)

    async def send_dead_letters(out: Outputs) -> None:
        for rejection in out.rejections:
            if rejection.active and rejection.structural:
                await dead_letters.send(
                    value=rejection.raw,
                    headers={"reason": rejection.reason.encode(), "origin": rejection.origin.encode()},
                )

    @app.task  # type: ignore[untyped-decorator]
    async def attribute() -> None:
        backoff = _Backoff("attribution")
        state_walked = 0.0
        fenced_until = 0.0
        trimmed = time.monotonic()
        while not app.should_stop:
            if not app.is_leader() or time.monotonic() < fenced_until:
                if attributor.active:
                    log.warning("attributor %s: leadership moved away, stepping down", name)
                    attributor.step_down()
                    metrics.LEADER.set(0)
                    metrics.ENGINE_STATE.clear()
                    metrics.BACKLOG.set(0)
                await asyncio.sleep(settings.attribution_poll_s)
                continue
            try:
                if not attributor.active:
                    await asyncio.to_thread(attributor.take_over)
                    metrics.LEADER.set(1)
                started = time.perf_counter()
                read, out = await asyncio.to_thread(attributor.step, settings.attribution_page)
                backoff.succeeded()
            except Fenced as exc:
                log.error("%s", exc)
                metrics.LEADER.set(0)
                # another worker leads now; taking over straight back would fence it in turn,
                # so let the group's assignment settle before believing is_leader() again
                fenced_until = time.monotonic() + 2 * settings.rebalance_timeout_s
                await asyncio.sleep(settings.attribution_poll_s)
                continue
            except SinkError as exc:  # the same batch again after a pause
                await backoff.failed(exc)
                continue
            if read:
                metrics.SINK_SECONDS.labels("attribution").observe(time.perf_counter() - started)
                await send_dead_letters(out)
            if settings.intake_trim_s > 0 and time.monotonic() - trimmed > settings.intake_trim_s:
                trimmed = time.monotonic()
                try:
                    await asyncio.to_thread(attributor.trim)
                except SinkError as exc:  # the next trim covers it
                    log.warning("intake trim failed: %s", exc)
            if time.monotonic() - state_walked > 15 and attributor.engine is not None:
                state_walked = time.monotonic()  # between steps: the engine is not being changed
                await asyncio.to_thread(metrics.observe_engine, attributor.engine.state, policy.click_window_s)
            if read < settings.attribution_page:
                await asyncio.sleep(settings.attribution_poll_s)

    lag_labels: set[tuple[str, str]] = set()

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def observe() -> None:
        """Consumer lag of the partitions this worker holds; backlog and state size on the leader."""
        held = set()
        for tp in app.consumer.assignment():
            if tp.topic not in family_topics:
                continue
            highwater = app.consumer.highwater(tp)
            position = worker.consumed.get((tp.topic, tp.partition))
            if highwater is None:
                continue
            if position is None:
                position = await app.consumer.position(tp) or 0
            metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
            held.add((tp.topic, str(tp.partition)))
        for labels in lag_labels - held:  # partitions that moved to another worker
            metrics.LAG.remove(*labels)
        lag_labels.clear()
        lag_labels.update(held)
        if attributor.active:
            try:
                await asyncio.to_thread(_observe_backlog, attributor)
            except SinkError as exc:  # a gauge can wait; a timer that raises would stop the worker
                log.warning("attribution backlog not read: %s", exc)

    if settings.exit_when_idle_s > 0:

        @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
        async def stop_when_idle() -> None:
            last = attributor.last_batch_at
            if last is not None and time.time() - last > settings.exit_when_idle_s:
                if settings.stats_path:
                    with open(settings.stats_path, "w", encoding="utf-8") as handle:
                        json.dump(attributor.stats(), handle)
                os.kill(os.getpid(), signal.SIGTERM)  # the faust Worker's own clean shutdown

    return worker


def _observe_backlog(attributor: Attributor) -> None:
    with attributor.lock:
        heads = attributor.store.heads()
    cursor = attributor.cursor
    metrics.BACKLOG.set(sum(max(0, n - cursor.get(tp, 0)) for tp, n in heads.items()))
