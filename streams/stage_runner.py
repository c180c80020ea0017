"""The partitions of one keyed stage a worker holds: their state, the messages applied, their checkpoints.

docs/design/streaming.md, section 4: a partition's state is a function of its
messages in order; it is loaded from its checkpoint the first time a message
of it comes, never applies a message past its position (``reread``), and is
checkpointed by ``save``, which returns the messages the checkpoint covers (to
ack). The agents around it are in streams/stages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
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
    rereading: bool = False  # sought back to ``next``: messages beyond it wait for the re-read
    waited: int = 0  # … messages beyond it passed over meanwhile
    lowest: int = 0  # … and the lowest of their offsets


class StageRunner:
    """The partitions of one keyed stage held by this worker, and their checkpoints."""

    def __init__(
        self,
        topic: str,
        policy: Policy,
        store: CheckpointStore,
        checkpoint_s: float,
        make: Callable[[], Stage] | None = None,  # type: ignore[type-arg]
        buffered: int = 4096,
    ) -> None:
        """``make``: a fresh stage of this topic (by default the plain one of ``stages_for``); ``buffered``: at
        least as many messages as a worker may hold fetched and not yet applied (``reread``)."""
        self.topic, self.policy, self.store, self.checkpoint_s = topic, policy, store, checkpoint_s
        self.make = make or (lambda: stages_for(policy)[topic])
        self.name = topic.removeprefix("stage.")
        self.held: dict[int, Held] = {}
        self.bad_lines = 0
        self.buffered = buffered
        self.seeks: dict[Any, int] = {}  # topic partition -> the offset to read it again from (``reread``)
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
            if base < held.next:
                held.unacked.append(event)
                continue  # already in the checkpoint: re-read after a move, or still buffered
            if base > held.next and not self.reread(held, message):
                continue  # not acked: it comes again
            held.unacked.append(event)
            held.rereading = False
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

    def reread(self, held: Held, message: Any) -> bool:
        """A message beyond the state's position: the messages between were never applied to this state.

        A partition's state is a function of its messages in order, so a message past ``held.next`` must
        not be applied to it: it was fetched before a rebalance that reloaded the partition, or the partition
        was dropped while a batch was applied, or the committed offset is past the checkpoint (a lost state
        directory). The partition is sought back to ``next`` (``seeks``, done by the agent) and messages
        beyond it are passed over, unacked, until the re-read reaches them. Returns True only for a hole in
        the log itself (records gone by retention): more messages passed over than a worker can have had
        buffered means the re-read starts past ``next``, so the state goes on from the lowest of them.
        """
        if not held.rereading:
            held.rereading, held.waited, held.lowest = True, 0, message.offset
            self.seeks[message.tp] = held.next >> LINE_BITS
            sm.REREADS.labels(self.name).inc()
            log.warning(
                "%s[%d]: message %d is past the state's position (offset %d): read again from there",
                self.name, message.partition, message.offset, held.next >> LINE_BITS,
            )  # fmt: skip
            return False
        held.waited += 1
        held.lowest = min(held.lowest, message.offset)
        if held.waited <= self.buffered:
            return False
        log.error(
            "%s[%d]: offsets %d to %d are not in the log (gone by retention?): the state goes on without them",
            self.name, message.partition, held.next >> LINE_BITS, held.lowest - 1,
        )  # fmt: skip
        sm.LOG_HOLES.labels(self.name).inc()
        held.next, held.rereading = position(held.lowest, 0), False
        if message.offset == held.lowest:
            return True
        return self.reread(held, message)

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


def count_decided(facts: list[Fact]) -> None:
    """Rejections decided late and duplicates, as a stage finds them (a re-read after a move counts again)."""
    for fact in facts:
        if fact.kind == "rejection" and fact.row.active:
            metrics.REJECTED.labels(fact.row.reason).inc()
        elif fact.kind == "duplicate" and fact.row.active:
            metrics.DUPLICATES.labels(fact.row.kind).inc()
