"""The stages (attribution/stages/) against the engine, the reference of SPEC section 3.

Two properties over random small worlds (tests/oracle_worlds.py):

- in one process (replay's driver), any batching gives the engine's facts;
- split into several partitions per stage, with records delivered in random
  interleavings, producers re-sending what they sent, and stage partitions
  crashing and resuming from their last (incremental) checkpoint, the facts
  folded by greatest version still equal the engine's.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import testing as kit
from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.facts import Fact
from attribution.stages.local import ROUND, stages_for
from attribution.stages.records import BROADCAST, POSTBACK, Emit, StageRecord
from attribution.stages.router import Router
from tests.oracle_worlds import event_sets

POLICIES = [Policy(), Policy(click_window_s=3600, view_window_s=1800, tz="UTC")]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(event_sets(), st.lists(st.integers(1, 12), max_size=10), st.sampled_from(POLICIES))
def test_local_pipeline_equals_engine(lines: list[bytes], sizes: list[int], policy: Policy) -> None:
    assert kit.run_stages(lines, policy, sizes).facts() == kit.run(lines, policy).facts()


class _Partition:
    """One stage partition: its input log, how far it has read, and its last checkpoint."""

    def __init__(self, topic: str, policy: Policy) -> None:
        self.topic, self.policy = topic, policy
        self.stage: Stage[Any] = stages_for(policy)[topic]
        self.log: list[StageRecord] = []
        self.cursor = 0
        self.checkpoint: tuple[int, dict[str, bytes]] = (0, {})

    def save(self) -> None:
        entries = self.checkpoint[1]
        entries = dict(entries)
        for key, blob in self.stage.changed().items():
            if blob is None:
                entries.pop(key, None)
            else:
                entries[key] = blob
        self.checkpoint = (self.cursor, entries)

    def crash(self) -> None:
        """Lose everything since the checkpoint; a new owner loads it and re-reads the tail."""
        self.stage = stages_for(self.policy)[self.topic]
        self.stage.restore(dict(self.checkpoint[1]))
        self.cursor = self.checkpoint[0]


class _Cluster:
    def __init__(self, policy: Policy, partitions: int, rng: random.Random) -> None:
        self.rng, self.n = rng, partitions
        self.router = Router(policy)
        self.parts = {
            t: [_Partition(t, policy) for _ in range(1 if t == "stage.config" else partitions)] for t in ROUND
        }
        self.facts: list[Fact] = []

    def send(self, emits: list[Emit]) -> None:
        for emit in emits:
            parts = self.parts[emit.topic]
            if emit.partition == BROADCAST:
                for part in parts:
                    part.log.append(emit.record)
            else:
                parts[zlib.crc32(emit.record.route.encode()) % len(parts)].log.append(emit.record)

    def route(self, batch: list[Any]) -> None:
        facts, emits = self.router.route(batch)
        self.facts.extend(facts)
        self.send(emits)
        if self.rng.random() < 0.2:  # the router crashed before acking: its input is routed again
            self.send(self.router.route(batch)[1])

    def step(self) -> bool:
        ready = [p for parts in self.parts.values() for p in parts if p.cursor < len(p.log)]
        if not ready:
            return False
        part = self.rng.choice(ready)
        end = self.rng.randint(part.cursor + 1, len(part.log))
        for i in range(part.cursor, end):
            part.stage.apply(part.log[i], i + 1)
        part.cursor = end
        facts, emits = part.stage.flush()
        self.facts.extend(facts)
        self.send(emits)
        roll = self.rng.random()
        if roll < 0.3:
            part.save()
        elif roll < 0.45:
            part.crash()
        return True


@settings(max_examples=150, deadline=None, derandomize=True)
@given(event_sets(), st.integers(1, 4), st.integers(0, 2**32), st.sampled_from(POLICIES))
def test_partitioned_stages_with_crashes_equal_engine(lines: list[bytes], n: int, seed: int, policy: Policy) -> None:
    rng = random.Random(seed)
    cluster = _Cluster(policy, n, rng)
    recs = kit.records(lines)
    start = 0
    while start < len(recs) or cluster.step():
        if start < len(recs) and rng.random() < 0.5:
            size = rng.randint(1, 6)
            cluster.route(recs[start : start + size])
            start += size
        else:
            cluster.step()
    assert kit.fold_facts(cluster.facts).facts() == kit.run(lines, policy).facts()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(event_sets(), st.sampled_from(POLICIES))
def test_every_stage_record_survives_the_wire(lines: list[bytes], policy: Policy) -> None:
    """What the stages send each other through Kafka decodes to exactly what was sent."""
    from attribution.stages import wire
    from attribution.stages.local import LocalPipeline

    class Recorder(Stage[None]):
        def _apply(self, record: StageRecord, at: int) -> None:
            pass

    pipeline = LocalPipeline(policy, extra={POSTBACK: Recorder(policy)})
    lines = [*lines, kit.click(click_id="k1", device_id="d1", campaign_id="cA", callback="cb:1/?x=1")]
    sent: list[StageRecord] = []
    original = pipeline._enqueue

    kinds: set[tuple[str, type]] = set()

    def spy(emits: list[Emit]) -> None:
        sent.extend(e.record for e in emits)
        kinds.update((e.topic, type(e.record)) for e in emits)
        original(emits)

    pipeline._enqueue = spy  # type: ignore[method-assign]
    pipeline.process(kit.records(lines))
    for record in sent:
        assert wire.decode(wire.encode(record)) == record
    assert {"CallbackIn", "ClockIn"} <= {type(r).__name__ for r in sent}
    # and replay's spill files (reelroi/replay_codec.py): the same records, the same classes, the same order
    import io

    from reelroi.replay_codec import dump_records, load_frames

    handle = io.BytesIO()
    dump_records(sent[: len(sent) // 2], handle, 7)
    dump_records(sent[len(sent) // 2 :], handle)
    handle.seek(0)
    frames = list(load_frames(handle))
    assert [order for order, _ in frames] == [7, 0]
    back = [record for _, part in frames for record in part]
    expected = by_class(sent[: len(sent) // 2]) + by_class(sent[len(sent) // 2 :])
    assert back == expected and [type(r) for r in back] == [type(r) for r in expected]
    assert repr(back) == repr(expected)  # Decimal digits and dates exactly
    # A frame gives its records back by class, which is all a bucket's arrangement needs: in every topic,
    # each rank of attribution/stages/passes.py is one class (its records keep their order, stably sorted).
    from attribution.stages import passes

    for topic in {t for t, _ in kinds if t in passes.PASSES}:  # (the postback stage is not replayed)
        ranks = [passes._RANK.get(cls, 5) for t, cls in kinds if t == topic]  # 5: _sort_key's default
        assert len(ranks) == len(set(ranks)), (topic, kinds)


def by_class(records: list[StageRecord]) -> list[StageRecord]:
    """``records`` by class (classes in the order they first come, each class's records in theirs)."""
    groups: dict[type, list[StageRecord]] = {}
    for record in records:
        groups.setdefault(type(record), []).append(record)
    return [record for group in groups.values() for record in group]


def test_user_stage_tells_the_source_click_what_converted_and_a_click_it_left() -> None:
    """SPEC 7's input: a campaign-click user's payments go to that click's key; a later, better click takes them."""
    from attribution.stages.local import LocalPipeline
    from attribution.stages.records import ConversionsIn

    seen: list[ConversionsIn] = []

    class Recorder(Stage[None]):
        def _apply(self, record: StageRecord, at: int) -> None:
            if isinstance(record, ConversionsIn):
                seen.append(record)

    recorder = Recorder(Policy())
    pipeline = LocalPipeline(Policy(), extra={POSTBACK: recorder})
    first = [
        kit.click(event_id="c-old", ts="2026-11-02T09:00:00+08:00", click_id="k1", device_id="d1", campaign_id="cA"),
        kit.redirect(event_id="r1", ts="2026-11-02T10:00:00+08:00", user_id="u1", device_id="d1"),
        kit.pay("o1", "u1", "2026-11-02T10:05:00+08:00", "6.00"),
    ]
    pipeline.process(kit.records(first))
    assert seen[-1].click_event_id == "c-old" and seen[-1].campaign_id == "cA"
    assert [p[0] for p in seen[-1].payments] == ["o1"]
    later = kit.click(event_id="c-new", ts="2026-11-02T09:30:00+08:00", click_id="k2", device_id="d1", campaign_id="cB")
    pipeline.process(kit.records([later], prefix="u"))
    left, took = seen[-2:]
    assert (left.click_event_id, left.campaign_id, left.payments) == ("c-old", "", ())
    assert (took.click_event_id, took.campaign_id, [p[0] for p in took.payments]) == ("c-new", "cB", ["o1"])


def test_spill_frames_give_back_decimals_dates_and_nested_records_exactly() -> None:
    """Records replay spills as plain tuples (Decimal as text, date as ordinal, nested records flat) come back equal."""
    import io
    from datetime import date
    from decimal import Decimal

    from attribution.orders import PaymentRec, RefundRec
    from attribution.sources import Touch
    from attribution.stages.records import Answer, OrderResult, PaymentIn, RefundIn, SpendIn, UnlockIn
    from reelroi.replay_codec import dump_records, load_frames

    pay = PaymentRec(10**30 + 7, "p1", "u1", Decimal("12.3400"), "CNY", date(2026, 11, 3), "f:1", b"{\x00\xff}")
    refund = RefundRec(5, "r1", Decimal("1E+2"), "USD", date(1, 1, 1), "f:2", b"")
    touch = Touch(3, "c1", "campaign", "cA")
    records: list[StageRecord] = [
        UnlockIn("u1", 1, "a1", Decimal("0.0000"), "CNY", date(9999, 12, 31), "f:3"),
        PaymentIn("o1", pay),
        UnlockIn("u2", 2, "a2", Decimal("1E-30"), "USD", date(1, 1, 1), "f:5"),  # columns: by class, in order
        SpendIn("cA", 3, "s1", 10**12, date(2026, 11, 3), Decimal("120.50"), "CNY", "f:6"),
        RefundIn("o1", refund),
        OrderResult("u1", "o1", 4, pay, Decimal("7.1234567890123456789"), (refund, refund._replace(event_id="r2"))),
        OrderResult("u1", "o2", 5, None, None, ()),
        Answer("u1", "rd1", "d", 6, touch, None),
        Answer("u1", "rd1", "k", 7, None, touch._replace(event_id="i1")),
    ]
    handle = io.BytesIO()
    dump_records(records, handle, 3)
    handle.seek(0)
    ((order, back),) = list(load_frames(handle))
    expected = by_class(records)
    assert order == 3 and back == expected and repr(back) == repr(expected)
    assert [type(r) for r in back] == [type(r) for r in expected]
