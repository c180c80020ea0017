"""The file driver: rebuild every derived table from event files or the stored log."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass, field

from attribution.engine import Engine, Record
from attribution.outputs import EVENT_ID_DUPLICATE, ORDER_DUPLICATE, STATE_KEY_PREFIX, Outputs
from attribution.policy import Policy
from reelroi.progress import Progress
from sinks.connection import command
from sinks.writer import DERIVED_TABLES, ClickHouseSink


@dataclass
class ReplayStats:
    records: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def policy_settings(policy: Policy) -> dict[str, str]:
    return {"policy." + k: v for k, v in policy.describe().items()}


def run(engine: Engine, sink: ClickHouseSink, batches: Iterable[list[Record]], progress: Progress) -> ReplayStats:
    """Feed batches through the engine into the sink; the write of a batch finishes before the next."""
    stats = ReplayStats()
    # The engine allocates millions of small acyclic objects and keeps most of
    # them: the default collector thresholds rescan them constantly (a quarter
    # of engine time at 1M events, measured with load_tests/bench_replay.py).
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 50, 100)
    try:
        for batch in batches:
            out: Outputs = engine.process(batch)
            sink.write(out)
            # state kept from this batch leaves the collector's view for good
            gc.freeze()
            stats.records += len(batch)
            stats.events += len(out.events)
            stats.rejected += sum(1 for r in out.rejections if r.active and r.structural)
            stats.duplicates += sum(1 for d in out.duplicates if d.kind == EVENT_ID_DUPLICATE)
            progress.advance(len(batch))
    finally:
        gc.set_threshold(*thresholds)
    progress.close()
    stats.rows_written = sink.rows_written
    stats.seconds = progress.elapsed()
    return stats


def replay(sink: ClickHouseSink, policy: Policy, batches: Iterable[list[Record]]) -> ReplayStats:
    """``reelroi replay``: replace everything with the result of these events."""
    sink.truncate()
    sink.save_settings(policy_settings(policy))
    return run(Engine(policy), sink, batches, Progress("replay"))


def reattribute(sink: ClickHouseSink, policy: Policy) -> ReplayStats:
    """``reelroi reattribute``: rebuild derived tables from the stored event log under ``policy``.

    Structural rejections and by-event_id duplicates are facts about input
    lines, not about the policy, and stay; everything else is recomputed.
    """
    db = sink.db
    version = sink.clock.next()
    # retract state-dependent verdicts: the engine re-emits those that still hold
    command(
        sink.client,
        f"INSERT INTO {db}.rejections SELECT key, reason, detail, event_id, type, origin, raw, {version}, 1 "
        f"FROM {db}.rejections FINAL WHERE startsWith(key, '{STATE_KEY_PREFIX}')",
    )
    command(
        sink.client,
        f"INSERT INTO {db}.duplicates SELECT key, kind, event_id, origin, {version}, 1 "
        f"FROM {db}.duplicates FINAL WHERE kind = '{ORDER_DUPLICATE}'",
    )
    sink.truncate(tuple(t for t in DERIVED_TABLES if t not in ("rejections", "duplicates")))
    sink.save_settings(policy_settings(policy))
    engine = Engine(policy)

    def batches() -> Iterable[list[Record]]:
        for block in sink.logged_events():
            yield [Record(origin, raw) for origin, raw in block]

    from_log = ClickHouseSink(sink.client, db, sink.clock, log_events=False)
    return run(engine, from_log, batches(), Progress("reattribute"))
