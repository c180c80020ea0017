"""The sink stage's write loop: a failing write is tried again, with growing pauses, until it succeeds."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from attribution.errors import FatalSinkError, RetryableSinkError
from attribution.outputs import UserFact
from attribution.stages.facts import Fact, encode
from streams.sink_stage import Backoff, decode_lines, write_until_written

FACT = Fact("user", 3, UserFact("u1", "campaign", "cA", "click_id", dt.date(2026, 11, 2), 0))


class FlakySink:
    """Fails ``failures`` times (retryable or not, both are retried), then writes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[list[Fact]] = []

    def write_facts(self, facts: list[Fact]) -> int:
        self.calls.append(list(facts))
        if len(self.calls) <= self.failures:
            raise (RetryableSinkError if len(self.calls) % 2 else FatalSinkError)("ClickHouse is down", 210)
        return len(facts)


def test_a_failing_write_is_retried_until_it_succeeds_with_doubling_pauses() -> None:
    sink: Any = FlakySink(failures=4)
    backoff = Backoff(first=0.001, most=0.004)
    delays: list[float] = []
    original = backoff.failed

    async def failed(exc: BaseException) -> None:
        await original(exc)
        delays.append(backoff.delay)

    backoff.failed = failed  # type: ignore[method-assign]
    assert asyncio.run(write_until_written(sink, [FACT], backoff)) == 1
    assert sink.calls == [[FACT]] * 5  # the same batch every time: nothing dropped
    assert delays == [0.001, 0.002, 0.004, 0.004]
    assert backoff.delay == 0.0  # the next failure starts again from the first pause


def test_lines_of_a_message_blank_ones_skipped_and_bad_ones_noted_with_their_origin() -> None:
    value = encode(FACT) + b"\n \r\n\n{not a fact}\n" + encode(FACT._replace(version=4))
    facts, bad = decode_lines("p.facts:2:17", value)
    assert [f.version for f in facts] == [3, 4]
    assert len(bad) == 1 and bad[0].startswith("p.facts:2:17 line 4: ")
    assert decode_lines("p.facts:0:0", None) == ([], [])  # a null value holds no facts
