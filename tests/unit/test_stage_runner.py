"""A stage partition handed back to a worker keeps its state only if nobody checkpointed it meanwhile (streams/stage_runner.py).

A worker stalled past its session timeout is rebalanced out without noticing;
another worker may take, apply and checkpoint its partitions before it rejoins
and gets them back. Its old state then lacks those records: ``refresh`` drops
it when the stored checkpoint is newer than what the worker loaded or saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from attribution.clock import TICKS_PER_SECOND
from attribution.policy import Policy
from attribution.stages import wire
from attribution.stages.base import position
from attribution.stages.records import FX, USER, ConfigIn, StageRecord, UnlockIn
from streams.checkpoints import DirectoryCheckpoints
from streams.outbox import Outbox
from streams.stage_runner import Reader, StageRunner


def test_a_partition_checkpointed_elsewhere_meanwhile_is_dropped_and_reloaded(tmp_path: Path) -> None:
    ours, theirs = DirectoryCheckpoints(tmp_path, writer="w1"), DirectoryCheckpoints(tmp_path, writer="w2")
    runner = StageRunner(USER, Policy(), ours, 5.0)
    runner.hold(0).next = position(5, 0)
    runner.save(0)
    runner.hold(1)
    runner.refresh({0, 1, 7})
    assert set(runner.held) == {0, 1}  # nobody else saved: the state stays
    theirs.save("user", 0, position(9, 0), {}, dict)  # the other worker held partition 0 and checkpointed it
    runner.refresh({1})
    assert set(runner.held) == {0, 1}  # only the partitions handed back are looked at
    runner.refresh({0, 1})
    assert set(runner.held) == {1}
    assert runner.hold(0).next == position(9, 0)  # reloaded from the newer checkpoint
    runner.refresh({0})
    assert 0 in runner.held


def test_our_own_newer_checkpoint_keeps_the_state(tmp_path: Path) -> None:
    runner = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path, writer="w1"), 5.0)
    held = runner.hold(3)
    for offset in (4, 8):
        held.next = position(offset, 0)
        runner.save(3)
        runner.refresh({3})
        assert runner.held[3] is held


class _Message:
    def __init__(self, offset: int, value: bytes, topic: str) -> None:
        self.partition, self.offset, self.value, self.topic = 0, offset, value, topic


class _Event:
    def __init__(self, offset: int, value: bytes, topic: str) -> None:
        self.message = _Message(offset, value, topic)


def _traffic(n: int, topic: str = "p.stage.user") -> list[_Event]:
    """Ad unlocks of users u0…, in USD, with the USD rate among them (message 2): one record a message."""
    t0 = 1_790_000_000 * TICKS_PER_SECOND
    records: list[StageRecord] = [
        UnlockIn(f"u{i}", t0 + i, f"a{i}", Decimal("0.5"), "USD", date(2026, 11, 2), f"f:{i}") for i in range(n)
    ]
    records[2] = ConfigIn(FX, "USD", t0, "fx-usd", ("USD", date(2026, 11, 1), Decimal("7.1")), "")
    return [_Event(i, wire.encode(r), topic) for i, r in enumerate(records)]


def _outbox() -> Outbox:
    return Outbox(None, "p.", {"p.facts": 1, "p.stage.postback": 1})  # type: ignore[arg-type]


def _state(runner: StageRunner) -> dict[str, bytes]:
    return runner.held[0].stage.everything()


class _Log:
    """A partition's log (``events``' messages by offset, less ``gone``): the ``read`` of a runner, reads recorded."""

    def __init__(self, events: list[_Event], gone: range = range(0)) -> None:
        self.messages = {e.message.offset: e.message.value for e in events if e.message.offset not in gone}
        self.reads: list[tuple[int, int]] = []

    def __call__(self, topic: str, partition: int, first: int, end: int) -> Iterator[tuple[int, bytes | None]]:
        assert (topic, partition) == ("p.stage.user", 0)
        self.reads.append((first, end))
        yield from ((o, v) for o, v in sorted(self.messages.items()) if first <= o < end)


def _runner(path: Path, read: Reader | None = None) -> StageRunner:
    return StageRunner(USER, Policy(), DirectoryCheckpoints(path), 5.0, read=read)


def test_messages_past_a_reloaded_state_are_applied_after_the_ones_between_read_from_the_log(tmp_path: Path) -> None:
    """A partition reloaded while messages past its checkpoint were buffered (a rebalance, a drop during a batch)."""
    events = _traffic(10)
    straight = _runner(tmp_path / "a")
    straight.apply(events, _outbox())
    log = _Log(events)
    runner = _runner(tmp_path / "b", log)
    runner.apply(events[:3], _outbox())
    assert len(runner.save(0)) == 3
    runner.apply(events[3:6], _outbox())  # applied, not checkpointed
    runner.drop(0)  # revoked and handed back: the next message reloads the checkpoint (position of message 3)
    runner.apply(events[6:], _outbox())  # fetched before the rebalance: past the reloaded state
    assert log.reads == [(3, 6)]
    assert _state(runner) == _state(straight)
    runner.apply(events[3:], _outbox())  # faust's own re-read from the committed offset: already in the state
    assert log.reads == [(3, 6)]
    assert _state(runner) == _state(straight)
    assert len(runner.save(0)) == 11  # every message faust delivered is covered, and acked


def test_a_committed_offset_past_a_lost_checkpoint_reads_the_partition_from_its_start(tmp_path: Path) -> None:
    events = _traffic(8)
    straight = _runner(tmp_path / "a")
    straight.apply(events, _outbox())
    log = _Log(events)
    runner = _runner(tmp_path / "b", log)  # an empty state directory
    runner.apply(events[5:], _outbox())  # the group's committed offset was 5
    assert log.reads == [(0, 5)]
    assert _state(runner) == _state(straight)


def test_offsets_gone_from_the_log_are_a_hole_the_state_goes_on_without(tmp_path: Path) -> None:
    """Offsets 0-4 deleted by retention, and 7: counted and logged; what the log still has is applied."""
    events = _traffic(12)
    log = _Log(events, gone=range(0, 5))
    del log.messages[7]
    runner = _runner(tmp_path, log)
    holes = REGISTRY.get_sample_value("reelroi_stage_log_holes_total", {"stage": "user"}) or 0.0
    runner.apply(events[9:], _outbox())
    assert log.reads == [(0, 9)]
    assert set(runner.held[0].stage.keys) == {f"u{i}" for i in (5, 6, 8, 9, 10, 11)}
    assert runner.held[0].next == position(12, 0)
    assert REGISTRY.get_sample_value("reelroi_stage_log_holes_total", {"stage": "user"}) == holes + 2


class _FailingOnce(DirectoryCheckpoints):
    """A directory whose second write fails (a full disk), then recovers."""

    saves = 0

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.saves += 1
        if self.saves == 2:
            raise OSError(28, "No space left on device")
        super().save(*args, **kwargs)


def test_a_checkpoint_that_fails_to_save_leaves_its_keys_for_the_next(tmp_path: Path) -> None:
    runner = StageRunner(USER, Policy(), _FailingOnce(tmp_path), 5.0)
    events = _traffic(8)
    runner.apply(events[:3], _outbox())
    runner.save(0)  # a base
    runner.apply(events[3:6], _outbox())
    with pytest.raises(OSError):
        runner.save(0)  # the delta of 3-5 fails
    runner.apply(events[6:], _outbox())
    assert len(runner.save(0)) == 5  # its keys go in the next one
    reloaded = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path), 5.0)
    assert reloaded.hold(0).stage.everything() == runner.held[0].stage.everything()
