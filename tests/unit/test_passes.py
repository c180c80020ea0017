"""The bucketed replay plan (attribution/stages/passes.py) against the engine, in memory.

Routed once, filed by bucket, then stage by stage and bucket by bucket in a
random arrival order (``arrange`` sorts most buckets; the others are taken in
that random order, configuration anywhere): the facts, folded by greatest
version, equal the engine's for any number of buckets.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import testing as kit
from attribution.policy import Policy
from attribution.stages.facts import Fact
from attribution.stages.passes import PASSES, UPSTREAM, BucketPass, arrange, bucket_of, buckets_of, shard_of
from attribution.stages.records import BROADCAST, CONFIG, Emit, PaymentIn, RefundIn, StageRecord
from attribution.stages.router import Router
from tests.oracle_worlds import event_sets

POLICIES = [Policy(), Policy(click_window_s=3600, view_window_s=1800, tz="UTC")]


def run_in_buckets(lines: list[bytes], policy: Policy, buckets: int, rng: random.Random) -> kit.Folded:
    inbox: dict[tuple[str, int], list[StageRecord]] = {}

    def file(emits: list[Emit]) -> None:
        for emit in emits:
            if emit.topic not in UPSTREAM:
                continue
            n = buckets_of(emit.topic, buckets)
            places = range(n) if emit.partition == BROADCAST else [bucket_of(emit.record.route, n)]
            for place in places:
                inbox.setdefault((emit.topic, place), []).append(emit.record)

    facts: list[Fact] = []
    routed, emits = Router(policy).route(kit.records(lines))
    facts.extend(routed)
    file(emits)
    for topic in PASSES:
        for bucket in range(buckets_of(topic, buckets)):
            records = inbox.pop((topic, bucket), [])
            rng.shuffle(records)
            runner = BucketPass(topic, policy)
            # arranged, or not: a pass's facts do not depend on the order it takes its records in
            taken = runner.arranged(records) if rng.random() < 0.7 else runner.stage.needed(records)
            for out in runner.run(taken, every=rng.randint(1, 8)):
                file(out)
            facts.extend(runner.facts())
    assert not inbox, f"records left for stages that already ran: {sorted(inbox)}"
    return kit.fold_facts(facts)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(event_sets(), st.integers(1, 6), st.integers(0, 2**32), st.sampled_from(POLICIES))
def test_bucketed_passes_equal_engine(lines: list[bytes], buckets: int, seed: int, policy: Policy) -> None:
    assert run_in_buckets(lines, policy, buckets, random.Random(seed)).facts() == kit.run(lines, policy).facts()


def test_a_key_has_one_bucket_whatever_the_number_of_buckets() -> None:
    for route in ("u1", "d:dev", "", "o-42", "é"):
        assert 0 <= shard_of(route) < 128
        for k in (1, 2, 3, 7, 128):
            assert bucket_of(route, k) == shard_of(route) % k
    assert buckets_of(CONFIG, 9) == 1


def test_arrange_puts_payments_before_refunds_and_keeps_copies_in_order() -> None:
    from attribution.orders import PaymentRec, RefundRec

    def pay(eid: str) -> Any:
        return PaymentIn("o1", PaymentRec(1, eid, "u1", 1, "CNY", None, eid + "@1", b""))  # type: ignore[arg-type]

    refund = RefundIn("o1", RefundRec(0, "r1", 1, "CNY", None, "r@1", b""))  # type: ignore[arg-type]
    records: list[StageRecord] = [refund, pay("p2"), pay("p1"), pay("p2")]
    assert arrange(records) == [pay("p2"), pay("p1"), pay("p2"), refund]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(event_sets())
def test_pass_0_files_records_where_the_stage_passes_look_for_them(lines: list[bytes]) -> None:
    """Pass 0's out (records filed as routed, the shard hash inline) puts each record where ``shard_of`` says."""
    from reelroi.replay_tasks import _file_emits, _Filed

    records = kit.records(lines)
    _, emits = Router(Policy()).route(records)
    filed = _Filed(0, True)
    facts, _ = Router(Policy()).route(records, filed)
    assert {(t, s): r for t, s, r in filed.places()} == _file_emits(emits, None)
    assert filed.events == len(lines) - len(facts)
