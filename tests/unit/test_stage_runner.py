"""A stage partition handed back to a worker keeps its state only if nobody checkpointed it meanwhile (streams/stages.py).

A worker stalled past its session timeout is rebalanced out without noticing;
another worker may take, apply and checkpoint its partitions before it rejoins
and gets them back. Its old state then lacks those records: ``refresh`` drops
it when the stored checkpoint is newer than what the worker loaded or saved.
"""

from __future__ import annotations

from pathlib import Path

from attribution.policy import Policy
from attribution.stages.base import position
from attribution.stages.records import USER
from streams.checkpoints import DirectoryCheckpoints
from streams.stages import StageRunner


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
