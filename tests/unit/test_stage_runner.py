"""A stage partition handed back to a worker keeps its state only if nobody checkpointed it meanwhile (streams/stage_runner.py).

A worker stalled past its session timeout is rebalanced out without noticing;
another worker may take, apply and checkpoint its partitions before it rejoins
and gets them back. Its old state then lacks those records: ``refresh`` drops
it when the stored checkpoint is newer than what the worker loaded or saved.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from attribution.clock import TICKS_PER_SECOND
from attribution.policy import Policy
from attribution.stages import wire
from attribution.stages.base import position
from attribution.stages.records import FX, USER, ConfigIn, StageRecord, UnlockIn
from streams.checkpoints import DirectoryCheckpoints
from streams.outbox import Outbox
from streams.stage_runner import StageRunner


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
    def __init__(self, offset: int, value: bytes) -> None:
        self.partition, self.offset, self.value, self.topic = 0, offset, value, "p.stage.user"
        self.tp = ("p.stage.user", 0)


class _Event:
    def __init__(self, offset: int, value: bytes) -> None:
        self.message = _Message(offset, value)


def _traffic(n: int) -> list[_Event]:
    """Ad unlocks of users u0…, in USD, with the USD rate among them (message 2): one record a message."""
    t0 = 1_790_000_000 * TICKS_PER_SECOND
    records: list[StageRecord] = [
        UnlockIn(f"u{i}", t0 + i, f"a{i}", Decimal("0.5"), "USD", date(2026, 11, 2), f"f:{i}") for i in range(n)
    ]
    records[2] = ConfigIn(FX, "USD", t0, "fx-usd", ("USD", date(2026, 11, 1), Decimal("7.1")), "")
    return [_Event(i, wire.encode(r)) for i, r in enumerate(records)]


def _outbox() -> Outbox:
    return Outbox(None, "p.", {"p.facts": 1, "p.stage.postback": 1})  # type: ignore[arg-type]


def _state(runner: StageRunner) -> dict[str, bytes]:
    return runner.held[0].stage.everything()


def test_messages_past_a_reloaded_state_wait_for_the_re_read_from_its_position(tmp_path: Path) -> None:
    """A partition reloaded while messages past its checkpoint were buffered (a rebalance, a drop during a batch)."""
    events = _traffic(10)
    straight = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path / "a"), 5.0)
    straight.apply(events, _outbox())
    runner = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path / "b"), 5.0)
    runner.apply(events[:3], _outbox())
    assert len(runner.save(0)) == 3
    runner.apply(events[3:6], _outbox())  # applied, not checkpointed
    runner.drop(0)  # revoked and handed back: the next message reloads the checkpoint (position of message 3)
    runner.apply(events[6:], _outbox())  # fetched before the rebalance: past the reloaded state
    assert runner.seeks == {("p.stage.user", 0): 3}
    assert runner.held[0].unacked == []  # passed over, unacked: they come again
    assert "u6" not in runner.held[0].stage.keys
    runner.seeks.clear()
    runner.apply(events[3:], _outbox())  # the re-read from offset 3
    assert runner.seeks == {}
    assert _state(runner) == _state(straight)
    assert len(runner.save(0)) == 7


def test_a_committed_offset_past_a_lost_checkpoint_reads_the_partition_again(tmp_path: Path) -> None:
    events = _traffic(8)
    straight = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path / "a"), 5.0)
    straight.apply(events, _outbox())
    runner = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path / "b"), 5.0)  # an empty state directory
    runner.apply(events[5:], _outbox())  # the group's committed offset was 5
    assert runner.seeks == {("p.stage.user", 0): 0}
    runner.apply(events, _outbox())
    assert _state(runner) == _state(straight)


def test_a_hole_in_the_log_is_crossed_once_more_messages_than_a_worker_buffers_passed_over(tmp_path: Path) -> None:
    """Offsets 0-4 gone by retention: the re-read from 0 starts at 5; the state goes on from there."""
    events = _traffic(12)
    runner = StageRunner(USER, Policy(), DirectoryCheckpoints(tmp_path), 5.0, buffered=3)
    runner.apply(events[7:9], _outbox())  # buffered ones first, then the re-read from the earliest offset
    assert runner.seeks == {("p.stage.user", 0): 0}
    runner.seeks.clear()
    runner.apply(events[5:7], _outbox())
    assert runner.seeks == {}  # 3 passed over: could still be buffered
    runner.apply(events[7:8], _outbox())
    assert runner.seeks == {("p.stage.user", 0): 5}  # more than a worker buffers: the log starts at 5
    runner.seeks.clear()
    runner.apply(events[5:], _outbox())
    keys = runner.held[0].stage.keys
    assert set(keys) == {f"u{i}" for i in range(5, 12)}
    assert runner.held[0].next == position(12, 0)
