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
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import faust
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.facts import Fact
from attribution.stages.local import stages_for
from attribution.stages.postbacks import DEFAULT_SETTLE_S
from attribution.stages.records import POSTBACK
from attribution.stages.router import Router
from schemas.decode import INVALID_JSON, Invalid
from schemas.framing import DEFAULT_MAX_LINE_BYTES, Record, frame_message
from streams import metrics
from streams import stage_metrics as sm
from streams.checkpoints import CheckpointStore
from streams.codecs import undecodable
from streams.outbox import Outbox
from streams.stage_runner import Reader, StageRunner
from streams.topics import FAMILIES, STAGE_TOPICS, dead_letter_topic, topic_name

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
    read: Reader | None = None,
) -> dict[str, StageRunner]:
    """Declare the router and the stage agents on ``app``; returns the runners (for tests and metrics).

    ``read``: the stage topics' messages from the log itself (``streams.log_reader.LogReader``), for
    the partitions whose state a message comes past (``StageRunner.catch_up``)."""
    feed = postbacks is not None and postbacks.postbacks
    settle_s = postbacks.postback_settle_s if postbacks is not None else DEFAULT_SETTLE_S

    def maker(topic: str) -> Callable[[], Stage]:  # type: ignore[type-arg]
        return lambda: stages_for(policy, feed, settle_s)[topic]

    runners = {t: StageRunner(t, policy, store, settings.checkpoint_s, maker(t), read) for t in STAGE_TOPICS}
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

    async def on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        """Drop the state of every partition held and not assigned now (``assigned`` is the whole new
        assignment): revoked, or loaded by a batch that was being applied when it was revoked. One handed
        back keeps its state (its tail is re-read from the committed offset and skipped below what the
        state covers), unless another worker checkpointed it meanwhile (a stalled worker rebalanced out
        unawares, ``StageRunner.refresh``); either way no message past the state is applied before the
        ones between (``StageRunner.catch_up``)."""
        for name, runner in runners.items():
            mine = {tp.partition for tp in assigned if tp.topic == prefix + name}
            for partition in list(runner.held):
                if partition not in mine:
                    runner.drop(partition)
            runner.refresh(mine)

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


__all__ = ["PostbackSettings", "StageSettings", "build_stages"]
