"""Replay in bounded pieces: stage by stage, key range (bucket) by bucket, on the same stage classes.

``LocalPipeline`` keeps every stage's whole state at once. A replay of a long
history instead routes every input once (the router, pass 0) and spills each
stage record into the bucket of its key (``bucket_of(record.route)``), then
runs the stages in dependency order (``PASSES``): one fresh stage over one
bucket's records at a time, whose emits are spilled into the buckets of the
stages downstream. Only one bucket's state is held at a time, and buckets of
one stage are independent, so they may run in parallel.

Versions. Each key of a stage is held by exactly one bucket (its route decides
it, as a Kafka partition would), so every key is computed in exactly one
(stage, bucket) pass, and the versions of its facts (positions in that pass)
are only ever compared with each other. Versions of different passes are not
comparable, and nothing compares them: a fact's key has one producer
(attribution/stages/facts.py).

Order. Within a bucket the records are arranged so that what defines a key's
shape comes before what is credited to it (``arrange``): configuration first,
then touches before the redirects they answer, payments before refunds,
redirects and answers before order results and unlocks. SPEC 3.8 makes the
final facts independent of arrival order (tests/unit/test_stages.py proves the
stages so under shuffling and partitioning); the order only changes how many
intermediate values are computed. The sort is stable, so exact copies keep
their arrival order.

Only what a pass ends with is written: per fact key, its last fact (the one of
the greatest version), which is what the table would keep anyway.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.facts import Fact, key_of
from attribution.stages.local import stages_for
from attribution.stages.records import (
    CONFIG,
    ORDER,
    SPEND,
    TOUCH,
    USER,
    Answer,
    ConfigIn,
    Emit,
    OrderResult,
    PaymentIn,
    RedirectAt,
    RedirectIn,
    RefundIn,
    StageRecord,
    TouchIn,
    UnlockIn,
)

SHARDS = 128  # the most buckets a replay uses (a larger history gets larger buckets)
# Dependency order: each stage reads only what the router and the stages before it emit.
PASSES = (CONFIG, TOUCH, ORDER, SPEND, USER)
# What each stage's input comes from (besides the router): a stage runs once these are done.
UPSTREAM: dict[str, tuple[str, ...]] = {
    CONFIG: (),
    TOUCH: (),
    ORDER: (CONFIG,),
    SPEND: (CONFIG,),
    USER: (CONFIG, TOUCH, ORDER),
}

# Rank of a record within its bucket: lower first (see the module docstring).
_RANK: dict[type, int] = {
    ConfigIn: 0,
    TouchIn: 1,  # touch keys: every touch is in before the redirects are answered
    RedirectAt: 2,
    PaymentIn: 1,  # orders: payments before refunds (a refund first would be unknown_order, then undone)
    RefundIn: 2,
    RedirectIn: 1,  # users: the earliest redirect first, then what its touch keys answered
    Answer: 2,
    OrderResult: 3,
    UnlockIn: 4,
}


def stable_hash(text: str) -> int:
    """A hash of ``text`` that every process and run agrees on (``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def buckets_of(topic: str, buckets: int) -> int:
    """How many buckets ``topic`` is split into: the config stage is one partition, like its topic."""
    return 1 if topic == CONFIG else buckets


def shard_of(route: str) -> int:
    """The shard of a route key; bucket ``b`` of ``K`` holds the shards ``s`` with ``s % K == b``.

    Records are filed by shard before the input's size (and so ``K``) is known;
    a key's bucket is then a function of its route alone, the same in every pass.
    """
    return stable_hash(route) % SHARDS


def bucket_of(route: str, buckets: int) -> int:
    return shard_of(route) % buckets


def _sort_key(record: StageRecord) -> tuple[int, int]:
    rank = _RANK.get(type(record), 5)
    if type(record) is RedirectIn:
        return rank, record.ts  # the earliest first: later ones then change nothing
    return rank, 0


def arrange(records: list[StageRecord]) -> list[StageRecord]:
    """``records`` in the order one pass takes them (stable: copies keep their arrival order)."""
    records.sort(key=_sort_key)
    return records


class BucketPass:
    """One fresh stage over one bucket's records: its final facts per key, and what it emits downstream."""

    def __init__(self, topic: str, policy: Policy) -> None:
        self.topic = topic
        self.stage: Stage[Any] = stages_for(policy)[topic]
        self.stage.tracking = False  # no checkpoints: nothing needs the changed keys
        # Only each key's last fact is written: recompute each touched key once, after the whole bucket
        # (a user with 30 unlocks is recomputed once, not 30 times, and no transient value is emitted).
        self.stage.deferred = True
        self._final: dict[tuple[str, Any], Fact] = {}
        self._at = 1  # positions start at 1, as in LocalPipeline: the router's facts have version 0
        self.records = 0

    def arranged(self, records: list[StageRecord]) -> list[StageRecord]:
        """A bucket's records as this pass takes them: those that can change an output (``Stage.needed``), arranged."""
        return arrange(self.stage.needed(records))

    def run(self, records: Iterable[StageRecord], every: int = 20_000) -> Iterable[list[Emit]]:
        """Apply ``records`` in order; yields the emits every ``every`` records (so they can be spilled)."""
        stage = self.stage
        at = self._at
        held = 0
        for record in records:
            stage.apply(record, at)
            at += 1
            held += 1
            if held >= every:
                self._at = at
                yield self._take()
                held = 0
        self._at = at
        self.records = at - 1
        stage.recompute_deferred()
        yield self._take()

    def _take(self) -> list[Emit]:
        facts, emits = self.stage.flush()
        final = self._final
        for fact in facts:  # per key, the greatest version (of equal ones the later) is its value after the pass
            key = (fact.kind, key_of(fact))
            held = final.get(key)
            if held is None or fact.version >= held.version:
                final[key] = fact
        return emits

    def facts(self) -> list[Fact]:
        """The last fact of every key this pass produced (call after ``run``)."""
        return list(self._final.values())

    def keys(self) -> int:
        return len(self.stage.keys)
