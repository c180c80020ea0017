"""The attribution stages on Kafka: the router and every keyed stage, as faust agents of one app.

docs/design/streaming.md is the why. Each agent reads one topic with
``noack_take`` (concurrency 1, faust #606). The router frames, decodes and
re-keys input records, sends what it made, waits for the broker's acks and
only then acks its input. A keyed stage holds the state of the partitions it
is assigned (``StageRunner``): it loads a partition's checkpoint the first
time it sees a record of it, applies records at their positions (records
below the checkpoint are skipped), sends the outputs, and every
``REELROI_STAGE_CHECKPOINT_S`` flushes, saves a checkpoint and acks the
records the checkpoint covers, so the committed offset never passes a
checkpoint. A revoked partition's state is dropped: whoever holds it next
loads the checkpoint and re-reads the tail, and because a stage's outputs are
decided per record and versioned by position, re-reading changes nothing.

Postbacks (SPEC 7) are on with ``REELROI_POSTBACKS=1``: the router sends
clicks' callbacks and the data's clock to ``stage.postback`` and the user
stage tells it what users converted. Its agent runs either way (off, it only
keeps the campaigns' rules and platforms the config stage broadcasts), so the
topic always has a reader and postbacks turned on later find the rules
already in place. Its ``send`` decisions go to ``<prefix>postbacks``, to the
partition of their idempotency key, for ``reelroi postback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.policy import Policy
from attribution.stages import facts as fact_codec
from attribution.stages import wire
from attribution.stages.base import Stage, position
from attribution.stages.facts import Fact
from attribution.stages.local import stages_for
from attribution.stages.postbacks import DEFAULT_SETTLE_S, PostbackStage
from attribution.stages.records import BROADCAST, POSTBACK, ClockIn, Emit
from attribution.stages.router import Router
from schemas.decode import INVALID_JSON, Invalid
from schemas.framing import DEFAULT_MAX_LINE_BYTES, Record, frame_message
from streams import metrics
from streams import stage_metrics as sm
from streams.checkpoints import CheckpointStore
from streams.codecs import undecodable
from streams.produce import BATCH_BYTES_LIMIT, partition_of
from streams.topics import FACTS_TOPIC, FAMILIES, STAGE_TOPICS, dead_letter_topic, topic_name

log = logging.getLogger("reelroi.stages")


class StageSettings(BaseSettings):
    """``REELROI_STAGE_*``: where stage checkpoints live and how often they are taken."""

    model_config = SettingsConfigDict(env_prefix="REELROI_STAGE_", extra="ignore")

    state_dir: str = "reelroi-state"  # checkpoints (one machine, or a file system all workers share)
    checkpoint_s: float = 5.0
    compact_ratio: float = 1.0


class PostbackSettings(BaseSettings):
    """``REELROI_POSTBACKS=1`` feeds the postback stage (SPEC 7); ``REELROI_POSTBACK_SETTLE_S`` its settle delay."""

    model_config = SettingsConfigDict(env_prefix="REELROI_", extra="ignore")

    postbacks: bool = False
    postback_settle_s: float = Field(default=DEFAULT_SETTLE_S, ge=0)
    # a postback partition holding conversions its clock already makes decidable, quiet this long, asks again
    postback_tick_s: float = Field(default=2.0, gt=0)


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


@dataclass
class Held:
    """One stage partition this worker holds."""

    stage: Stage  # type: ignore[type-arg]
    next: int  # the next position to apply; records below it are already in state
    saved_at: float
    covered: int = 0  # the position of the checkpoint this worker loaded or last saved
    unacked: list[Any] = field(default_factory=list)  # faust events applied, not yet covered by a checkpoint
    applied_at: float = 0.0  # monotonic time of the last message applied
    ticked_at: float = -1.0  # … and of the last clock this partition sent itself (postbacks)


class StageRunner:
    """The partitions of one keyed stage held by this worker, and their checkpoints."""

    def __init__(
        self,
        topic: str,
        policy: Policy,
        store: CheckpointStore,
        checkpoint_s: float,
        make: Callable[[], Stage] | None = None,  # type: ignore[type-arg]
    ) -> None:
        """``make``: a fresh stage of this topic (by default the plain one of ``stages_for``)."""
        self.topic, self.policy, self.store, self.checkpoint_s = topic, policy, store, checkpoint_s
        self.make = make or (lambda: stages_for(policy)[topic])
        self.name = topic.removeprefix("stage.")
        self.held: dict[int, Held] = {}
        self.bad_lines = 0
        self.lock = asyncio.Lock()  # the agent's batch and the idle checkpoint timer take turns
        self.stream: Any = None  # the agent's stream, to ack with

    def hold(self, partition: int) -> Held:
        held = self.held.get(partition)
        if held is None:
            started = time.perf_counter()
            checkpoint = self.store.load(self.name, partition)
            stage = self.make()
            stage.restore(checkpoint.entries)
            held = self.held[partition] = Held(stage, checkpoint.position, time.monotonic(), checkpoint.position)
            seconds = time.perf_counter() - started
            sm.LOADS.labels(self.name).observe(seconds)
            log.info(
                "%s[%d]: loaded %d keys at position %d in %.2fs",
                self.name, partition, len(stage.keys), checkpoint.position, seconds,
            )  # fmt: skip
        return held

    def drop(self, partition: int) -> None:
        if self.held.pop(partition, None) is not None:
            for gauge in (sm.CHECKPOINTED, sm.KEYS):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.name, str(partition))
            log.info("%s[%d]: revoked, state dropped (the next owner loads its checkpoint)", self.name, partition)

    def apply(self, events: list[Any], outbox: Outbox) -> None:
        """Apply a batch of faust events (one or more partitions) and queue what they emit."""
        for event in events:
            message = event.message
            held = self.hold(message.partition)
            base = position(message.offset, 0)
            held.unacked.append(event)
            if base < held.next:
                continue  # already in the checkpoint: re-read after a move, or still buffered
            for i, line in enumerate((message.value or b"").split(b"\n"), start=1):
                if not line:
                    continue
                try:
                    record = wire.decode(line)
                except (ValueError, KeyError, IndexError, TypeError) as exc:  # a bug upstream: count it, go on
                    self.bad_lines += 1
                    sm.BAD_LINES.labels(self.name).inc()
                    log.error("%s: undecodable stage record at %s:%d:%d:%d: %s", self.name, message.topic,
                              message.partition, message.offset, i, exc)  # fmt: skip
                    continue
                held.stage.apply(record, base + i)
            held.next = position(message.offset + 1, 0)
            held.applied_at = time.monotonic()
            facts, emits = held.stage.flush()
            count_decided(facts)
            outbox.facts(facts, message.partition)
            outbox.emits(emits)
            sm.RECORDS.labels(self.name).inc()

    def ticks(self, now: float, quiet_s: float) -> list[Emit]:
        """Postbacks: a partition's own clock, sent to itself, where the clock would decide what came after it.

        The router sends the clock with each batch, so the conversions a batch
        causes reach the postback stage after it; with nothing more to route no
        clock follows. Once such a partition's input has been quiet for
        ``quiet_s`` (the stages before it have settled), it sends itself its
        clock again: a record like any other, so re-reading it decides the same.
        """
        out = []
        for partition, held in self.held.items():
            stage = held.stage
            if not isinstance(stage, PostbackStage) or held.ticked_at >= held.applied_at:
                continue
            if now - held.applied_at >= quiet_s and stage.wants_clock():
                held.ticked_at = now
                out.append(Emit(self.topic, ClockIn(stage.clock), partition))
        return out

    def due(self, now: float, everything: bool = False) -> list[int]:
        return [p for p, h in self.held.items() if h.unacked and (everything or now - h.saved_at >= self.checkpoint_s)]

    def save(self, partition: int) -> list[Any]:
        """Checkpoint one partition (outputs already delivered); returns the events it now covers."""
        held = self.held[partition]
        started = time.perf_counter()
        self.store.save(self.name, partition, held.next, held.stage.changed(), held.stage.everything)
        sm.SAVES.labels(self.name).observe(time.perf_counter() - started)
        sm.CHECKPOINTED.labels(self.name, str(partition)).set(time.time())
        sm.KEYS.labels(self.name, str(partition)).set(len(held.stage.keys))
        held.saved_at = time.monotonic()
        held.covered = held.next
        events, held.unacked = held.unacked, []
        return events

    def refresh(self, partitions: set[int]) -> None:
        """Drop the held partitions among ``partitions`` that another worker has checkpointed past this one's state.

        A partition handed back in a rebalance normally kept its state (nobody else held it in between). But
        a worker that stalled past its session timeout is rebalanced out without noticing: another worker
        takes its partitions, applies and checkpoints records, and when the stalled one rejoins it may get
        them back with its old state, which lacks those records (their unlocks, the first copies of ids).
        A newer checkpoint than the one this worker covers says so; the next record loads it.
        """
        for partition in partitions & self.held.keys():
            newest = self.store.newest(self.name, partition)
            if newest > self.held[partition].covered:
                log.warning(
                    "%s[%d]: checkpointed elsewhere to %d since this worker's %d: state dropped, reloaded",
                    self.name, partition, newest, self.held[partition].covered,
                )  # fmt: skip
                self.drop(partition)


def count_routed(events: list[Any], facts: list[Fact], prefix: str) -> None:
    """Pipeline counters for a router batch: records per family, events and rejected lines per type."""
    for topic, n in Counter(e.message.topic for e in events).items():
        metrics.CONSUMED.labels(topic.removeprefix(prefix)).inc(n)
    for fact in facts:
        if fact.kind == "event":
            metrics.PROCESSED.labels(sm.event_type(fact.row.type)).inc()
        elif fact.kind == "rejection":
            metrics.PROCESSED.labels(sm.event_type(fact.row.type)).inc()
            metrics.REJECTED.labels(fact.row.reason).inc()


def count_decided(facts: list[Fact]) -> None:
    """Rejections decided late and duplicates, as a stage finds them (a re-read after a move counts again)."""
    for fact in facts:
        if fact.kind == "rejection" and fact.row.active:
            metrics.REJECTED.labels(fact.row.reason).inc()
        elif fact.kind == "duplicate" and fact.row.active:
            metrics.DUPLICATES.labels(fact.row.kind).inc()


def frame_events(events: list[Any], max_line: int) -> list[Record]:
    records: list[Record] = []
    for event in events:
        m = event.message
        origin = f"kafka:{m.topic}:{m.partition}:{m.offset}"
        reason = undecodable(m)
        if reason:
            detail = f"undecodable record batch ({reason}); the whole batch is kept"
            records.append(Record(origin, m.value or b"", Invalid(INVALID_JSON, detail)))
        else:
            records.extend(frame_message(m.value, origin, max_line))
    return records


def build_stages(
    app: faust.App,
    prefix: str,
    counts: dict[str, int],
    policy: Policy,
    store: CheckpointStore,
    settings: StageSettings,
    batch_max: int,
    within_s: float,
    max_line: int = DEFAULT_MAX_LINE_BYTES,
    on_batch: Callable[[str, int], None] | None = None,
    postbacks: PostbackSettings | None = None,
) -> dict[str, StageRunner]:
    """Declare the router and the stage agents on ``app``; returns the runners (for tests and metrics)."""
    feed = postbacks is not None and postbacks.postbacks
    settle_s = postbacks.postback_settle_s if postbacks is not None else DEFAULT_SETTLE_S

    def maker(topic: str) -> Callable[[], Stage]:  # type: ignore[type-arg]
        return lambda: stages_for(policy, feed, settle_s)[topic]

    runners = {t: StageRunner(t, policy, store, settings.checkpoint_s, maker(t)) for t in STAGE_TOPICS}
    inputs = app.topic(*sorted(topic_name(prefix, f.name) for f in FAMILIES), value_type=bytes, key_type=bytes)
    dead_letters = app.topic(dead_letter_topic(prefix), value_type=bytes, key_type=bytes)
    router = Router(policy, postbacks=feed)

    @app.agent(inputs, concurrency=1)
    async def route(stream: faust.StreamT[bytes]) -> None:
        outbox = Outbox(app, prefix, counts)
        async for events in stream.noack_take(batch_max, within=within_s):  # type: ignore[attr-defined]
            started = time.perf_counter()
            records = frame_events(events, max_line)
            facts, emits = await asyncio.to_thread(router.route, records)
            outbox.facts(facts, events[0].message.partition)
            outbox.emits(emits)
            outbox.born = sm.born_of(e.message for e in events)
            await outbox.deliver()
            count_routed(events, facts, prefix)
            metrics.BATCH_SIZE.observe(len(records))
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            for fact in facts:
                if fact.kind == "rejection":
                    r = fact.row
                    headers = {"reason": r.reason.encode(), "origin": r.origin.encode()}
                    await dead_letters.send(value=r.raw, headers=headers)
            sm.ROUTED.inc(len(records))
            for event in events:
                await stream.ack(event)
            if on_batch is not None:
                on_batch("router", len(records))

    for stage_topic, runner in runners.items():
        topic = app.topic(
            topic_name(prefix, stage_topic),
            value_type=bytes,
            key_type=bytes,
            partitions=counts[topic_name(prefix, stage_topic)],
        )
        tick_s = postbacks.postback_tick_s if postbacks is not None and stage_topic == POSTBACK else None
        _stage_agent(app, topic, runner, prefix, counts, batch_max, within_s, on_batch, tick_s)

    revoked_now: set[Any] = set()

    async def on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        """Noted, not yet dropped: an eager rebalance revokes everything and hands most of it straight back."""
        revoked_now.update(revoked)

    async def on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        """Drop the state of partitions revoked and not handed back. One handed back in the same rebalance
        keeps its state (its tail is re-read from the committed offset and skipped below what the state
        covers), unless another worker checkpointed it meanwhile (a stalled worker rebalanced out unawares)."""
        for tp in revoked_now - set(assigned):
            runner = runners.get(tp.topic.removeprefix(prefix))
            if runner is not None:
                runner.drop(tp.partition)
        revoked_now.clear()
        for name, runner in runners.items():  # ... unless someone else held it after all (StageRunner.refresh)
            runner.refresh({tp.partition for tp in assigned if tp.topic == prefix + name})

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    return runners


def _stage_agent(
    app: faust.App,
    topic: Any,
    runner: StageRunner,
    prefix: str,
    counts: dict[str, int],
    batch_max: int,
    within_s: float,
    on_batch: Callable[[str, int], None] | None,
    tick_s: float | None = None,
) -> None:
    async def run(stream: faust.StreamT[bytes]) -> None:
        runner.stream = stream
        outbox = Outbox(app, prefix, counts)
        async for events in stream.noack_take(batch_max, within=within_s):  # type: ignore[attr-defined]
            assigned = app.consumer.assignment()
            live = [e for e in events if e.message.tp in assigned]  # a revoked partition's buffered records wait
            started = time.perf_counter()
            async with runner.lock:
                outbox.born = sm.born_of(e.message for e in live)
                await asyncio.to_thread(runner.apply, live, outbox)
                await outbox.deliver()
                await _checkpoint(runner, stream, everything=False)
            sm.BATCH_SECONDS.labels(runner.name).observe(time.perf_counter() - started)
            if on_batch is not None:
                on_batch(runner.name, len(live))

    run.__name__ = f"stage_{runner.name}"
    app.agent(topic, name=f"reelroi.stage.{runner.name}", concurrency=1)(run)

    @app.timer(interval=max(0.2, runner.checkpoint_s / 2))  # type: ignore[untyped-decorator]
    async def checkpoint_idle() -> None:
        """A partition that has gone quiet is checkpointed too, so that its last records are acked."""
        if runner.stream is not None:
            async with runner.lock:
                await _checkpoint(runner, runner.stream, everything=False)

    if tick_s is not None:
        ticks = Outbox(app, prefix, counts)

        @app.timer(interval=max(0.1, tick_s / 2))  # type: ignore[untyped-decorator]
        async def tick() -> None:
            """Postback partitions quiet with something to decide send themselves their clock (``ticks``)."""
            async with runner.lock:
                ticks.emits(runner.ticks(time.monotonic(), tick_s))
                await ticks.deliver()


async def _checkpoint(runner: StageRunner, stream: Any, everything: bool) -> None:
    """Save the partitions that are due (their outputs are delivered) and ack what the saves cover."""
    for partition in runner.due(time.monotonic(), everything):
        for event in await asyncio.to_thread(runner.save, partition):
            await stream.ack(event)


__all__ = ["PostbackSettings", "StageRunner", "StageSettings", "build_stages"]
