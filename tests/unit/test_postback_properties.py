"""Postback decisions over random worlds with callbacks (SPEC 7), through the router and every stage.

- Events late by less than the settle delay (config on time): the decisions
  (all but the clock they were made at) do not depend on batching, on that
  lateness, on partitioning or on crashes;
- events in any order, batched one way: partitioned stages that crash and
  resume from their checkpoints decide exactly what one process decides
  (the clock included), supersessions too.

The cluster (like tests/unit/test_stages.py's) hands a router batch's clock
to the postback partitions once every stage has settled: the stages keep up
with the router within the settle delay (attribution/stages/local.py).
"""

from __future__ import annotations

import random
import zlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import testing as kit
from attribution.outputs import PostbackDecision
from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.facts import Fact
from attribution.stages.local import ROUND, LocalPipeline, stages_for
from attribution.stages.postbacks import PostbackStage
from attribution.stages.records import BROADCAST, CONFIG, POSTBACK, POSTBACKS, ClockIn, Emit, SendPostback, StageRecord
from attribution.stages.router import Router
from tests.oracle_worlds import BASE, ts_text

SETTLE_S = 600
LATE_MIN = 9  # below the settle delay (10 minutes)
POLICY = Policy()
Line = tuple[int, bool, bytes]  # minute from BASE, is configuration, the line


def at(minute: int) -> str:
    return ts_text(minute, BASE.tzinfo)  # type: ignore[arg-type]


@st.composite
def worlds(draw: Any) -> list[Line]:
    """Campaigns, rules and a rate up front (sometimes a rule or a platform changing later), then clicks with
    callbacks, redirects and payments over four hours, with exact copies."""
    lines: list[Line] = []
    n = iter(range(10**6))

    def add(minute: int, config: bool, type_: str, **fields: Any) -> None:
        lines.append((minute, config, kit.line(type=type_, event_id=f"{type_[:2]}{next(n)}", ts=at(minute), **fields)))

    for campaign, platform in (("cA", "douyin"), ("cB", "tencent"), ("cC", "tiktok")):
        if draw(st.integers(0, 4)) > 0:
            add(-500, True, "campaign", campaign_id=campaign, platform=platform, drama_id="dr1", buyer_id="b1")
    add(-500, True, "fx_rate", currency="USD", rate="7.1", effective_date="2026-10-01")
    rules = st.fixed_dictionaries(
        {
            "kinds": st.lists(st.sampled_from(["activate", "first_pay", "every_pay"]), unique=True, max_size=3),
            "min_amount": st.sampled_from([None, "5", "10"]),
            "send_ratio": st.sampled_from(["1", "0.5", "0", "0.3333"]),
        }
    )
    for campaign in ("cA", "cB"):
        if draw(st.integers(0, 3)) > 0:
            add(
                -400,
                True,
                "postback_rule",
                campaign_id=campaign,
                **{k: v for k, v in draw(rules).items() if v is not None},
            )
    if draw(st.booleans()):
        minute = draw(st.integers(0, 240))
        add(minute, True, "postback_rule", campaign_id=draw(st.sampled_from(["cA", "cB"])), **draw(rules))
    if draw(st.booleans()):
        add(draw(st.integers(0, 240)), True, "campaign", campaign_id="cA", platform="kuaishou", drama_id="dr1",
            buyer_id="b2")  # fmt: skip
    clicks = st.sampled_from(["k1", "k2", "k3", "k4"])
    devices = st.sampled_from(["d1", "d2", "d3"])
    users = st.sampled_from(["u1", "u2", "u3", "u4"])

    def click(minute: int, click_id: str, device: str) -> None:
        source = draw(st.sampled_from(["cA", "cA", "cB", "cC", "cX", "plan"]))
        fields: dict[str, Any] = {"plan_id": "pA"} if source == "plan" else {"campaign_id": source}
        if source != "plan" and draw(st.integers(0, 6)) > 0:
            fields["callback"] = f"cb-{next(n)}"
        add(minute, False, "click", click_id=click_id, device_id=device, **fields)

    def pay(minute: int, user: str) -> None:
        add(minute, False, "payment", order_id=draw(st.sampled_from([f"o{i}" for i in range(8)])), user_id=user,
            drama_id="dr1", amount=draw(st.sampled_from(["30", "4.99", "10", "0.01", "12.3456"])),
            currency=draw(st.sampled_from(["CNY", "CNY", "USD"])), kind="unlock")  # fmt: skip

    for _ in range(draw(st.integers(0, 4))):  # journeys: a click, its user's redirect, the user's payments
        minute, click_id, device, user = draw(st.integers(0, 150)), draw(clicks), draw(devices), draw(users)
        click(minute, click_id, device)
        by_click = draw(st.booleans())
        redirected = minute + draw(st.integers(0, 20))
        add(redirected, False, "redirect", user_id=user, app_id="wx1", host="wechat",
            **({"click_id": click_id} if by_click else {"device_id": device}))  # fmt: skip
        for _ in range(draw(st.integers(0, 3))):
            pay(redirected + draw(st.integers(0, 60)), user)
    for _ in range(draw(st.integers(0, 8))):  # and around them: other clicks, redirects and payments
        kind = draw(st.sampled_from(["click", "click", "redirect", "payment"]))
        minute = draw(st.integers(0, 200))
        if kind == "click":
            click(minute, draw(clicks), draw(devices))
        elif kind == "redirect":
            fields = {}
            if draw(st.booleans()):
                fields["click_id"] = draw(clicks)
            if draw(st.booleans()):
                fields["device_id"] = draw(devices)
            add(minute, False, "redirect", user_id=draw(users), app_id="wx1", host="wechat", **fields)
        else:
            pay(minute, draw(users))
    if lines:
        for _ in range(draw(st.integers(0, 3))):
            lines.append(lines[draw(st.integers(0, len(lines) - 1))])
    return lines


def in_time(lines: list[Line]) -> list[bytes]:
    return [raw for _, _, raw in sorted(lines, key=lambda x: (x[0], not x[1]))]


def late(lines: list[Line], rng: random.Random) -> list[bytes]:
    """Each event late by less than LATE_MIN minutes (a copy by its own lateness); configuration on time."""
    keyed = [(m + (0 if config else rng.uniform(0, LATE_MIN)), not config, i, raw) for i, (m, config, raw) in
             enumerate(lines)]  # fmt: skip
    return [raw for *_, raw in sorted(keyed)]


def batches(n: int, rng: random.Random, biggest: int) -> list[tuple[int, int]]:
    out, start = [], 0
    while start < n:
        size = rng.randint(1, biggest)
        out.append((start, min(n, start + size)))
        start += size
    return out


# --------------------------------------------------------------------------- one process and a cluster


class Decisions:
    """Postback facts folded as the sink keeps them (per key, the greatest version), and the sends."""

    def __init__(self) -> None:
        self.facts: list[Fact] = []
        self.sent: set[str] = set()

    def add(self, facts: list[Fact], emits: list[Emit]) -> None:
        self.facts.extend(f for f in facts if f.kind == "postback")
        for emit in emits:
            if emit.topic == POSTBACKS:
                assert isinstance(emit.record, SendPostback)
                self.sent.add(emit.record.decision.key)

    def rows(self) -> dict[str, PostbackDecision]:
        kept: dict[str, Fact] = {}
        for fact in self.facts:
            held = kept.get(fact.row.key)
            assert held is None or held.version != fact.version or held.row == fact.row  # one value per version
            if held is None or fact.version >= held.version:
                kept[fact.row.key] = fact
        rows = {k: f.row for k, f in kept.items()}
        for row in rows.values():
            assert row.decided_us >= row.conversion_us + SETTLE_S * 1_000_000
        assert self.sent == {k for k, f in kept.items() if _was_sent(f, self.facts)}
        return rows


def _was_sent(fact: Fact, facts: list[Fact]) -> bool:
    return any(f.row.key == fact.row.key and f.row.decision == "send" for f in facts)


def without_clock(rows: dict[str, PostbackDecision]) -> dict[str, PostbackDecision]:
    return {k: r._replace(decided_us=0) for k, r in rows.items()}


def local(lines: list[bytes], spans: list[tuple[int, int]] | None = None) -> Decisions:
    pipeline = LocalPipeline(POLICY, extra={POSTBACK: PostbackStage(POLICY, SETTLE_S)})
    recs = kit.records(lines)
    out = Decisions()
    for start, end in spans or [(i, i + 1) for i in range(len(recs))]:
        out.add(pipeline.process(recs[start:end]), pipeline.outbound)
        pipeline.outbound = []
    return out


class _Partition:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.stage = self._fresh()
        self.log: list[StageRecord] = []
        self.cursor = 0
        self.checkpoint: tuple[int, dict[str, bytes]] = (0, {})

    def _fresh(self) -> Stage[Any]:
        return stages_for(POLICY, postbacks=True, settle_s=SETTLE_S)[self.topic]

    def save(self) -> None:
        entries = dict(self.checkpoint[1])
        for key, blob in self.stage.changed().items():
            if blob is None:
                entries.pop(key, None)
            else:
                entries[key] = blob
        self.checkpoint = (self.cursor, entries)

    def crash(self) -> None:
        self.stage = self._fresh()
        self.stage.restore(dict(self.checkpoint[1]))
        self.cursor = self.checkpoint[0]


class _Cluster:
    def __init__(self, partitions: int, rng: random.Random) -> None:
        self.rng = rng
        self.router = Router(POLICY, postbacks=True)
        self.parts = {t: [_Partition(t) for _ in range(1 if t == CONFIG else partitions)] for t in ROUND}
        self.out = Decisions()

    def send(self, emits: list[Emit]) -> None:
        for emit in emits:
            if emit.topic == POSTBACKS:
                continue  # for the sender: counted from the partition's emits
            parts = self.parts[emit.topic]
            if emit.partition == BROADCAST:
                for part in parts:
                    part.log.append(emit.record)
            else:
                parts[zlib.crc32(emit.record.route.encode()) % len(parts)].log.append(emit.record)

    def route(self, batch: list[Any]) -> None:
        routed = [self.router.route(batch)]
        if self.rng.random() < 0.2:  # the router crashed before acking: its input is routed again
            routed.append(self.router.route(batch))
        clocks: list[Emit] = []
        for _, emits in routed:
            self.send([e for e in emits if not isinstance(e.record, ClockIn)])
            clocks.extend(e for e in emits if isinstance(e.record, ClockIn))
        self.settle()
        self.send(clocks)
        self.settle()

    def settle(self) -> None:
        while True:
            ready = [p for parts in self.parts.values() for p in parts if p.cursor < len(p.log)]
            if not ready:
                return
            part = self.rng.choice(ready)
            end = self.rng.randint(part.cursor + 1, len(part.log))
            for i in range(part.cursor, end):
                part.stage.apply(part.log[i], i + 1)
            part.cursor = end
            facts, emits = part.stage.flush()
            self.out.add(facts, emits)
            self.send(emits)
            roll = self.rng.random()
            if roll < 0.3:
                part.save()
            elif roll < 0.45:
                part.crash()


def cluster(lines: list[bytes], spans: list[tuple[int, int]], partitions: int, rng: random.Random) -> Decisions:
    c = _Cluster(partitions, rng)
    recs = kit.records(lines)
    for start, end in spans:
        c.route(recs[start:end])
    return c.out


# --------------------------------------------------------------------------- the properties


@settings(max_examples=200, deadline=None, derandomize=True)
@given(worlds(), st.integers(0, 2**32), st.integers(1, 4))
def test_decisions_do_not_depend_on_batching_lateness_within_the_settle_delay_partitions_or_crashes(
    world: list[Line], seed: int, partitions: int
) -> None:
    rng = random.Random(seed)
    reference = local(in_time(world)).rows()
    assert all(r.decision != "superseded" for r in reference.values())  # nothing moves once it has settled
    shuffled = late(world, rng)
    spans = batches(len(shuffled), rng, rng.choice([1, 3, 8, 40]))
    assert without_clock(local(shuffled, spans).rows()) == without_clock(reference)
    assert without_clock(cluster(shuffled, spans, partitions, rng).rows()) == without_clock(reference)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(worlds(), st.integers(0, 2**32), st.integers(1, 4))
def test_in_any_order_a_cluster_with_crashes_decides_what_one_process_decides(
    world: list[Line], seed: int, partitions: int
) -> None:
    rng = random.Random(seed)
    lines = [raw for _, _, raw in world]
    rng.shuffle(lines)
    spans = batches(len(lines), rng, rng.choice([1, 2, 5]))
    expected = local(lines, spans).rows()
    assert cluster(lines, spans, partitions, rng).rows() == expected


# --------------------------------------------------------------------------- one story, end to end


def test_a_campaign_click_with_a_callback_end_to_end() -> None:
    lines = [
        kit.campaign(event_id="cmp", ts="2026-11-01T00:00:00+08:00", campaign_id="cA", platform="douyin"),
        kit.line(
            type="postback_rule",
            event_id="rule1",
            ts="2026-11-01T00:00:00+08:00",
            campaign_id="cA",
            kinds=["activate", "every_pay"],
            min_amount="5",
            send_ratio="0.5",
        ),
        kit.click(event_id="c1", ts=at(0), click_id="k1", device_id="d1", campaign_id="cA", callback="CB"),
        kit.redirect(event_id="r1", ts=at(5), user_id="u1", click_id="k1"),
        kit.pay("o1", "u1", at(6), "6"),  # in the share (0.138)
        kit.pay("o2", "u1", at(7), "6"),  # outside (0.572)
        kit.pay("o4", "u1", at(8), "4.99"),  # in the share (0.106), below 5
        kit.click(event_id="late", ts=at(1), click_id="k9", device_id="d9", campaign_id="cA", callback="NEVER"),
        kit.pay("o3", "u1", at(25), "50"),  # not settled: the clock stops at 30
        kit.redirect(event_id="r2", ts=at(30), user_id="u2"),
    ]
    got = local(lines)
    rows = got.rows()
    summary = {(r.kind, r.order_id or r.user_id): (r.decision, r.amount) for r in rows.values()}
    assert summary == {
        ("activate", "u1"): ("send", 0),
        ("pay", "o1"): ("send", 6),
        ("pay", "o2"): ("held_ratio", 6),
        ("pay", "o4"): ("held_min_amount", Decimal("4.99")),
    }
    assert {r.platform for r in rows.values()} == {"oceanengine"}
    assert {r.callback for r in rows.values()} == {"CB"} and {r.click_event_id for r in rows.values()} == {"c1"}
    assert got.sent == {k for k, r in rows.items() if r.decision == "send"}
    pay = next(r for r in rows.values() if r.order_id == "o1")
    assert pay.conversion_us == (BASE + timedelta(minutes=6)).timestamp() * 1_000_000
    # one line a batch: decided at the clock of the first line past its moment (minute 16), o3's
    assert pay.decided_us == (BASE + timedelta(minutes=25)).timestamp() * 1_000_000
