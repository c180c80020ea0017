"""The partitions of one keyed stage a worker holds: their state, the messages applied, their checkpoints.

docs/design/streaming.md, section 4: a partition's state is a function of its
messages in order; it is loaded from its checkpoint the first time a message
of it comes, never applies a message past its position before the ones between (``catch_up``), and is
checkpointed by ``save``, which returns the messages the checkpoint covers (to
ack). The agents around it are in streams/stages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from attribution.policy import Policy
from attribution.stages import wire
from attribution.stages.base import LINE_BITS, Stage, position
from attribution.stages.facts import Fact
from attribution.stages.local import stages_for
from attribution.stages.postbacks import PostbackStage
from attribution.stages.records import ClockIn, Emit
from streams import metrics
from streams import stage_metrics as sm
from streams.checkpoints import CheckpointStore
from streams.outbox import Outbox

# (topic, partition, first, end) -> (offset, value) of the partition's messages from ``first`` (or the log's
# first offset, if later) up to ``end``, excluded (streams/log_reader.py)
Reader = Callable[[str, int, int, int], Iterable[tuple[int, bytes | None]]]

log = logging.getLogger("reelroi.stages")


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
        read: Reader | None = None,
    ) -> None:
        """``make``: a fresh stage of this topic (by default the plain one of ``stages_for``); ``read``: the
        partition's messages from the log itself, for a state that a message came past (``catch_up``)."""
        self.topic, self.policy, self.store, self.checkpoint_s = topic, policy, store, checkpoint_s
        self.make = make or (lambda: stages_for(policy)[topic])
        self.name = topic.removeprefix("stage.")
        self.held: dict[int, Held] = {}
        self.bad_lines = 0
        self.read = read
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
            if base > held.next:
                self.catch_up(held, message.topic, message.partition, message.offset, outbox)
            self._apply(held, message.topic, message.partition, message.offset, message.value, outbox)

    def _apply(self, held: Held, topic: str, partition: int, offset: int, value: bytes | None, outbox: Outbox) -> None:
        base = position(offset, 0)
        for i, line in enumerate((value or b"").split(b"\n"), start=1):
            if not line:
                continue
            try:
                record = wire.decode(line)
            except (ValueError, KeyError, IndexError, TypeError) as exc:  # a bug upstream: count it, go on
                self.bad_lines += 1
                sm.BAD_LINES.labels(self.name).inc()
                log.error("%s: undecodable stage record at %s:%d:%d:%d: %s", self.name, topic, partition, offset, i,
                          exc)  # fmt: skip
                continue
            held.stage.apply(record, base + i)
        held.next = position(offset + 1, 0)
        held.applied_at = time.monotonic()
        facts, emits = held.stage.flush()
        count_decided(facts)
        outbox.facts(facts, partition)
        outbox.emits(emits)
        sm.RECORDS.labels(self.name).inc()

    def catch_up(self, held: Held, topic: str, partition: int, offset: int, outbox: Outbox) -> None:
        """A message came past the state's position: apply first the messages between, read from the log.

        A partition's state is a function of its messages in order, so the messages from ``held.next`` up
        to ``offset`` must be applied before it. They were fetched before a rebalance that reloaded the
        partition, or applied to a state dropped during a batch, or are below a committed offset past the
        checkpoint (a lost state directory). They are read from the log with a consumer of their own, which
        leaves faust's consumer, its positions and its acks alone (faust delivers them again, or they are
        already committed). Offsets the log no longer has (retention) are a hole: logged and counted.
        """
        assert self.read is not None, "a stage runner without a log reader met a gap"
        first = held.next >> LINE_BITS
        sm.REREADS.labels(self.name).inc()
        log.warning("%s[%d]: message %d is past the state's position (offset %d): reading %d messages from the log",
                    self.name, partition, offset, first, offset - first)  # fmt: skip
        for found, value in self.read(topic, partition, first, offset):
            if found > held.next >> LINE_BITS:
                self._hole(partition, held.next >> LINE_BITS, found)
            self._apply(held, topic, partition, found, value, outbox)
        if held.next >> LINE_BITS < offset:
            self._hole(partition, held.next >> LINE_BITS, offset)

    def _hole(self, partition: int, first: int, end: int) -> None:
        log.error("%s[%d]: offsets %d to %d are not in the log (gone by retention?): the state goes on without them",
                  self.name, partition, first, end - 1)  # fmt: skip
        sm.LOG_HOLES.labels(self.name).inc()

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
        held = self.held.get(partition)
        if held is None:
            return []  # dropped in a rebalance meanwhile
        started = time.perf_counter()
        changed = held.stage.changed()
        try:
            self.store.save(self.name, partition, held.next, changed, held.stage.everything)
        except BaseException:
            held.stage.unsaved(changed)  # in the next delta, or the chain would lack them
            raise
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


def count_decided(facts: list[Fact]) -> None:
    """Rejections decided late and duplicates, as a stage finds them (a re-read after a move counts again)."""
    for fact in facts:
        if fact.kind == "rejection" and fact.row.active:
            metrics.REJECTED.labels(fact.row.reason).inc()
        elif fact.kind == "duplicate" and fact.row.active:
            metrics.DUPLICATES.labels(fact.row.kind).inc()
