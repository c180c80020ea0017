"""The attributor over a real embedded ClickHouse: takeover, epoch fence, redelivered records."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from attribution.policy import Policy
from sinks.connection import connect
from sinks.intake import IntakeRecord, IntakeStore
from sinks.schema import migrate
from sinks.writer import ClickHouseSink
from streams.attributor import Attributor, Fenced

pytestmark = pytest.mark.integration
LINES = (Path(__file__).parents[1] / "data" / "spec_example.jsonl").read_bytes().splitlines()


def intake(lines: list[bytes], first_offset: int) -> list[IntakeRecord]:
    return [IntakeRecord("t.all", 0, first_offset + i, 1_700_000_000_000, raw) for i, raw in enumerate(lines)]


def test_a_newer_attributor_fences_the_old_one_and_the_result_equals_replay(store) -> None:  # type: ignore[no-untyped-def]
    store.replay(LINES)
    expected = store.reports()

    db = store.new_database()
    client = connect(store.dsn)
    migrate(client, db)
    sink, lock = ClickHouseSink(client, db), threading.Lock()
    records = IntakeStore(client, db)
    first, rest = LINES[:9], LINES[9:]
    records.append(intake(first, 0), sink.clock.next())

    old = Attributor(sink, Policy(), lock, "old")
    assert old.take_over() == 0
    assert old.step(100)[0] == len(first)
    records.append(intake(first[:4], 0), sink.clock.next())  # a redelivery after a rebalance: same offsets
    assert old.step(100)[0] == 0 and old.events == len(first)  # below the cursor: never read again

    # as if it died after writing facts and the event log but before saving its offsets
    records.save_offsets({("t.all", 0): 5}, old.epoch, sink.clock.next())

    new = Attributor(ClickHouseSink(client, db), Policy(), lock, "new")
    logged = new.take_over()  # rebuilds from the event log, continues from the saved offsets
    assert logged == len(first) and new.cursor == {("t.all", 0): 5}
    assert new.epoch > old.epoch

    records.append(intake(rest, len(first)), sink.clock.next())
    with pytest.raises(Fenced):
        old.step(100)  # it woke up late: it must not write over its successor
    assert not old.active
    assert new.step(100)[0] == len(first) - 5 + len(rest)  # the logged four are skipped, not duplicates

    assert store.reports() == expected
    new.trim(wait=True)  # attributed records leave intake; the reports do not move
    assert client.query(f"SELECT count() FROM {db}.intake").result_rows[0][0] == 0
    records.append(intake([LINES[3]], len(LINES)), sink.clock.next())  # a late copy of click e1
    assert new.step(100)[0] == 1
    assert store.reports()["rejects"]["duplicates"] == expected["rejects"]["duplicates"] + 1


def test_batched_messages_are_attributed_a_bounded_number_of_lines_at_a_time(store) -> None:  # type: ignore[no-untyped-def]
    store.replay(LINES)
    expected = store.reports()

    db = store.new_database()
    client = connect(store.dsn)
    migrate(client, db)
    sink = ClickHouseSink(client, db)
    messages = [b"\n".join(LINES[i : i + 4]) for i in range(0, len(LINES), 4)]  # batches of four lines
    IntakeStore(client, db).append(intake(messages, 0), sink.clock.next())

    attributor = Attributor(sink, Policy(), threading.Lock(), "a", page_lines=6)
    attributor.take_over()
    assert attributor.step(100)[0] == len(messages)  # read them all, took two: 8 lines >= 6
    assert attributor.cursor == {("t.all", 0): 2} and attributor.events == 8
    while attributor.step(100)[0]:
        pass
    assert attributor.cursor == {("t.all", 0): len(messages)} and attributor.events == len(LINES)
    assert store.reports() == expected
