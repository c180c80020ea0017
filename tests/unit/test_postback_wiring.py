"""The streaming side of postbacks without a broker: settings, where sends go, and a quiet partition's own clock."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from attribution.clock import TICKS_PER_SECOND
from attribution.outputs import PostbackDecision
from attribution.policy import Policy
from attribution.stages import wire
from attribution.stages.postbacks import DEFAULT_SETTLE_S, PostbackStage
from attribution.stages.records import POSTBACK, POSTBACKS, CallbackIn, ClockIn, ConversionsIn, Emit, SendPostback
from streams.checkpoints import DirectoryCheckpoints
from streams.outbox import Outbox
from streams.produce import partition_of
from streams.stage_runner import StageRunner
from streams.stages import PostbackSettings
from streams.topics import POSTBACKS_TOPIC, STAGE_TOPICS, all_topics


def test_settings_are_off_by_default_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REELROI_POSTBACKS", "REELROI_POSTBACK_SETTLE_S", "REELROI_POSTBACK_TICK_S"):
        monkeypatch.delenv(name, raising=False)
    assert PostbackSettings().postbacks is False and PostbackSettings().postback_settle_s == DEFAULT_SETTLE_S
    monkeypatch.setenv("REELROI_POSTBACKS", "1")
    monkeypatch.setenv("REELROI_POSTBACK_SETTLE_S", "30")
    monkeypatch.setenv("REELROI_POSTBACK_TICK_S", "0.5")
    got = PostbackSettings()
    assert (got.postbacks, got.postback_settle_s, got.postback_tick_s) == (True, 30, 0.5)


def test_the_topics_exist() -> None:
    assert POSTBACK in STAGE_TOPICS and POSTBACKS_TOPIC == POSTBACKS
    assert {"p.stage.postback", "p.postbacks"} <= set(all_topics("p."))


def _decision(key: str) -> PostbackDecision:
    return PostbackDecision(key, "tencent", "cB", "c1", "cb", "u1", "o1", "pay", Decimal("6"), 1, 2, "send", "x")


def test_sends_go_to_the_partition_of_their_key_and_a_clock_to_the_partition_named() -> None:
    outbox = Outbox(None, "p.", {"p.postbacks": 4, "p.stage.postback": 3})  # type: ignore[arg-type]
    sends = [SendPostback(_decision(f"key-{i}")) for i in range(20)]
    outbox.emits([Emit(POSTBACKS, s) for s in sends] + [Emit(POSTBACK, ClockIn(5), 2)])
    lines: dict[tuple[str, int], list[bytes]] = outbox._lines
    for send in sends:
        assert wire.encode(send) in lines[("p.postbacks", partition_of(send.decision.key.encode(), 4))]
    assert lines[("p.stage.postback", 2)] == [wire.encode(ClockIn(5))]
    assert len({p for t, p in lines if t == "p.postbacks"}) > 1


class _Event:
    def __init__(self, offset: int, value: bytes, partition: int = 0) -> None:
        self.message = type("M", (), {"partition": partition, "offset": offset, "value": value, "topic": "t"})()


def test_a_quiet_partition_with_something_decidable_sends_itself_its_clock_once(tmp_path: Path) -> None:
    runner = StageRunner(
        POSTBACK, Policy(), DirectoryCheckpoints(tmp_path), 5.0, make=lambda: PostbackStage(Policy(), 60)
    )
    outbox = Outbox(None, "p.", {"p.stage.postback": 2, "p.postbacks": 2, "p.facts": 1})  # type: ignore[arg-type]
    t0 = 1_790_000_000 * TICKS_PER_SECOND
    records: list[Any] = [
        CallbackIn("c1", t0, "cA", "cb", "t:1"),
        ClockIn(t0 + 3600 * TICKS_PER_SECOND),  # the router's clock, before the user stage's news
        ConversionsIn("c1", "u1", 1, "cA", t0, ()),
    ]
    runner.apply([_Event(i, wire.encode(r)) for i, r in enumerate(records)], outbox)
    applied = runner.held[0].applied_at
    assert runner.ticks(applied + 1.0, quiet_s=2.0) == []  # not quiet long enough
    (tick,) = runner.ticks(applied + 2.0, quiet_s=2.0)
    assert tick == Emit(POSTBACK, ClockIn(t0 + 3600 * TICKS_PER_SECOND), 0)
    assert runner.ticks(applied + 9.0, quiet_s=2.0) == []  # sent: wait for it
    runner.apply([_Event(3, wire.encode(tick.record))], outbox)
    stage = runner.held[0].stage
    assert isinstance(stage, PostbackStage) and not stage.wants_clock()  # decided
    assert runner.ticks(runner.held[0].applied_at + 9.0, quiet_s=2.0) == []
    sent = [
        wire.decode(line) for (topic, _), lines in outbox._lines.items() if topic == "p.postbacks" for line in lines
    ]
    assert [(s.decision.kind, s.decision.user_id) for s in sent] == [("activate", "u1")]  # type: ignore[union-attr]
