"""Facts to insert blocks (pure): per key within a block the greatest version, each row with its own."""

from __future__ import annotations

import datetime as dt

import pytest

from attribution.outputs import LoggedEvent, Outputs, UserFact
from attribution.stages.facts import Fact
from sinks.rows import blocks, fact_blocks

DAY = dt.date(2026, 11, 2)


def user(user_id: str, source_id: str) -> UserFact:
    return UserFact(user_id, "campaign", source_id, "click_id", DAY, 0)


def test_per_key_the_greatest_version_and_of_equal_ones_the_later() -> None:
    facts = [
        Fact("user", 5, user("u1", "a")),
        Fact("user", 9, user("u1", "b")),
        Fact("user", 7, user("u1", "c")),
        Fact("user", 3, user("u2", "d")),
        Fact("user", 3, user("u2", "e")),
    ]
    (block,) = fact_blocks(facts)
    rows = dict(zip(block.data[0], zip(block.data[2], block.data[-1], strict=True), strict=True))
    assert rows == {"u1": ("b", 9), "u2": ("e", 3)}
    assert block.columns[-1] == "version" and block.types[-1] == "UInt64"


def test_the_same_columns_as_engine_outputs_and_the_event_log_last() -> None:
    event = LoggedEvent("e1", "click", 0, "t:0:0", b"\xff")
    from_facts = fact_blocks([Fact("event", 2, event), Fact("user", 1, user("u1", "a"))])
    from_outputs = blocks(Outputs(events=[event], users=[user("u1", "a")]), version=4)
    assert [b.table for b in from_facts] == [b.table for b in from_outputs] == ["users", "events"]
    for mine, theirs in zip(from_facts, from_outputs, strict=True):
        assert (mine.columns, mine.types, mine.data[:-1]) == (theirs.columns, theirs.types, theirs.data[:-1])
    assert [b.data[-1] for b in from_facts] == [[1], [2]]


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        fact_blocks([Fact("nope", 1, user("u1", "a"))])
