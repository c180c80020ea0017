"""The file driver: rebuild every derived table from event files or the stored log."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from attribution.outputs import ORDER_DUPLICATE, STATE_KEY_PREFIX
from attribution.policy import Policy
from reelroi.progress import Progress
from reelroi.replay_passes import Batch, run_passes
from schemas.framing import LoggedBatch
from sinks.builds import Build, building
from sinks.compare import source_totals
from sinks.connection import command
from sinks.writer import ALL_TABLES, DERIVED_TABLES, ClickHouseSink

# What each rebuild replaces. The settings go with the data: they record the
# policy it was built with. Tokens, migrations and the postback ledger stay.
REPLAY_TABLES = (*ALL_TABLES, "settings")
REATTRIBUTE_TABLES = (*DERIVED_TABLES, "settings")


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


def run_bucketed(
    sink: ClickHouseSink, policy: Policy, batches: Iterable[Batch], build: Build, label: str
) -> ReplayStats:
    """Feed batches through the stages in bounded pieces (reelroi/replay_passes.py) into the sink.

    The router runs once over the input; then each stage runs over one key
    range (bucket) at a time, in dependency order, in worker processes when
    there is more than one core: memory holds one bucket's state per worker,
    whatever the history's length. The same stage classes run in the Kafka
    workers (streams/stages.py), so a replay and a stream cannot disagree.
    """
    progress = Progress(label)
    passes = run_passes(sink, policy, build.alive(batches), progress.advance, alive=build.alive)
    progress.close()
    return ReplayStats(
        records=passes.records, events=passes.events, rejected=passes.rejected, duplicates=passes.duplicates,
        rows_written=passes.rows_written, seconds=progress.elapsed(), timings=passes.timings,
    )  # fmt: skip


def replay(sink: ClickHouseSink, policy: Policy, batches: Iterable[Batch]) -> ReplayStats:
    """``reelroi replay``: replace everything with the result of these events.

    Written beside the live tables and switched in only once complete
    (sinks/builds.py): if reading or writing fails at any point, or the process
    is interrupted, the live tables stay as they were.
    """
    with building(sink.client, sink.db, REPLAY_TABLES, "replay") as build:
        target = sink.into(build.names)
        _carry(sink, target, "settings")
        target.save_settings(policy_settings(policy))
        stats = run_bucketed(target, policy, batches, build, "replay")
    return stats


class _DryRun(Exception):
    """Raised inside a dry run's build so that it is dropped, never switched in."""


@dataclass
class DryRun:
    """What ``reattribute`` would change: per-source totals now and under the new policy."""

    stats: ReplayStats
    before: dict[tuple[str, str], dict[str, Any]]
    after: dict[tuple[str, str], dict[str, Any]]


def dry_run(sink: ClickHouseSink, policy: Policy) -> DryRun:
    """``reelroi reattribute --dry-run``: build under ``policy`` beside the live tables, compare, drop the build."""
    before = source_totals(sink.client, sink.db)
    found: list[DryRun] = []

    def compare(stats: ReplayStats, names: dict[str, str]) -> None:
        found.append(DryRun(stats, before, source_totals(sink.client, sink.db, names)))
        raise _DryRun

    with contextlib.suppress(_DryRun):
        reattribute(sink, policy, inspect=compare)
    return found[0]


def reattribute(
    sink: ClickHouseSink, policy: Policy, inspect: Callable[[ReplayStats, dict[str, str]], None] | None = None
) -> ReplayStats:
    """``reelroi reattribute``: rebuild derived tables from the stored event log under ``policy``.

    Structural rejections and by-event_id duplicates are facts about input
    lines, not about the policy: they are carried into the new tables as they
    are; everything else is recomputed. Built beside the live tables like a replay.
    """
    with building(sink.client, sink.db, REATTRIBUTE_TABLES, "reattribute") as build:
        target = sink.into(build.names, log_events=False)
        _carry(sink, target, "settings")
        _carry(sink, target, "rejections", f" WHERE NOT startsWith(key, '{STATE_KEY_PREFIX}')")
        _carry(sink, target, "duplicates", f" WHERE kind != '{ORDER_DUPLICATE}'")
        target.save_settings(policy_settings(policy))

        def batches() -> Iterable[Batch]:
            for block in sink.logged_events():
                yield LoggedBatch([origin for origin, _ in block], [raw for _, raw in block])

        stats = run_bucketed(target, policy, batches(), build, "reattribute")
        if inspect is not None:  # a dry run looks at the build, then raises: nothing is switched in
            inspect(stats, build.names)
    return stats


def clear(sink: ClickHouseSink, policy: Policy) -> None:
    """Replace everything a replay replaces with empty tables under ``policy`` (``reelroi demo``), in one switch."""
    with building(sink.client, sink.db, REPLAY_TABLES, "clear") as build:
        target = sink.into(build.names)
        _carry(sink, target, "settings")
        target.save_settings(policy_settings(policy))


def _carry(live: ClickHouseSink, target: ClickHouseSink, table: str, where: str = "") -> None:
    """Copy the current rows of a live table (``FINAL``: deleted ones left out) into its new sibling."""
    command(live.client, f"INSERT INTO {target.table(table)} SELECT * FROM {live.table(table)} FINAL{where}")
