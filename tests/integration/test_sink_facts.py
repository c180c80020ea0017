"""Facts into the embedded ClickHouse: per key the greatest version wins, whatever the order of arrival.

Also the schema change that goes with them (money keyed by user and event,
0008) and reading late rejections' bytes from the event log.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from attribution.outputs import (
    CampaignRow,
    Duplicate,
    FxRow,
    LoggedEvent,
    MoneyFact,
    Outputs,
    PlanRow,
    Rejection,
    SpendFact,
    UserFact,
)
from attribution.stages.facts import Fact
from sinks import builds
from sinks.connection import command, connect
from sinks.reports import recent_rejections, roi_rows
from sinks.schema import migrate, migrations, statements
from sinks.writer import ClickHouseSink

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 2)


@pytest.fixture
def sink(chdb_dir: Path) -> Iterator[ClickHouseSink]:
    client = connect(f"chdb://{chdb_dir}")
    db = f"f_{uuid.uuid4().hex}"
    migrate(client, db)
    yield ClickHouseSink(client, db)
    command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def user(user_id: str = "u1", source_id: str = "cA", active: bool = True) -> UserFact:
    return UserFact(user_id, "campaign", source_id, "click_id", DAY, 1_000, active)


def money(user_id: str, event_id: str = "p1", value: str = "10", active: bool = True) -> MoneyFact:
    v = Decimal(value)
    return MoneyFact(
        event_id, "payment", user_id, "o1", 2_000, DAY, "campaign", "cA", DAY, "CNY", v, Decimal(1), v, "", Decimal(0),
        active,
    )  # fmt: skip


def rows(sink: ClickHouseSink, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    return [
        tuple(r) for r in sink.client.query(f"SELECT {columns} FROM {sink.table(table)} FINAL ORDER BY ALL").result_rows
    ]


def test_the_greatest_version_wins_in_any_order_of_arrival(sink: ClickHouseSink) -> None:
    facts = [Fact("user", v, user(source_id=f"c{v}")) for v in (3, 7, 5)]
    for order in itertools.permutations(facts):
        sink.truncate(("users",))
        for fact in order:  # one insert each: the table decides
            sink.write_facts([fact])
        assert rows(sink, "users", "source_id, version") == [("c7", 7)]
        sink.truncate(("users",))
        assert sink.write_facts(order) == 1  # one block: decided before the insert
        assert rows(sink, "users", "source_id, version") == [("c7", 7)]


def test_of_equal_versions_in_one_block_the_later_wins(sink: ClickHouseSink) -> None:
    sink.write_facts([Fact("user", 4, user(source_id="first")), Fact("user", 4, user(source_id="second"))])
    assert rows(sink, "users", "source_id") == [("second",)]


def test_a_retraction_hides_the_row_and_an_older_copy_does_not_bring_it_back(sink: ClickHouseSink) -> None:
    sink.write_facts([Fact("user", 1, user()), Fact("user", 1, user("u2"))])
    sink.write_facts([Fact("user", 2, user(active=False))])
    sink.write_facts([Fact("user", 1, user())])  # a redelivered old batch
    assert rows(sink, "users", "user_id") == [("u2",)]
    sink.write_facts([Fact("user", 3, user(source_id="cB"))])  # and a later one does
    assert rows(sink, "users", "user_id, source_id") == [("u1", "cB"), ("u2", "cA")]


def test_money_moved_between_users_leaves_one_active_row(sink: ClickHouseSink) -> None:
    """u1's partition counted p1 first at a high position; u2's partition, at a low one, counts it now.

    Keyed by event_id alone the retraction (version 90) would also hide u2's row (version 4).
    """
    moved = [
        Fact("user", 1, user("u1", "cA")),
        Fact("user", 2, user("u2", "cB")),
        Fact("money", 50, money("u1")),
        Fact("money", 4, money("u2")._replace(source_id="cB")),
        Fact("money", 90, money("u1", active=False)),
    ]
    for order in (moved, moved[::-1], [moved[4], moved[2], moved[3], moved[0], moved[1]]):
        sink.truncate(("users", "money"))
        for fact in order:
            sink.write_facts([fact])
        assert rows(sink, "money", "user_id, event_id, source_id") == [("u2", "p1", "cB")]
        revenue = {(r["source_id"], r["cohort_date"]): r["revenue_total"] for r in roi_rows(sink.client, sink.db)}
        assert revenue == {("cA", DAY): Decimal(0), ("cB", DAY): Decimal(10)}


def test_without_the_event_log_events_are_skipped(sink: ClickHouseSink) -> None:
    quiet = sink.into({}, log_events=False)
    written = quiet.write_facts(
        [Fact("event", 1, LoggedEvent("e1", "click", 0, "t:0:0", b"{}")), Fact("user", 1, user())]
    )
    assert written == 1
    assert rows(sink, "events") == [] and len(rows(sink, "users")) == 1


def test_renamed_tables_are_written_instead(sink: ClickHouseSink) -> None:
    command(sink.client, f"CREATE TABLE {sink.db}.users_other AS {sink.db}.users")
    sink.into({"users": "users_other"}).write_facts([Fact("user", 1, user())])
    assert rows(sink, "users") == [] and rows(sink, "users_other", "user_id") == [("u1",)]


def every_kind() -> Outputs:
    raw = b"\xff not utf-8"
    return Outputs(
        events=[LoggedEvent("e1", "payment", 1_762_000_000_123_456, "t:1:2", raw)],
        rejections=[Rejection("event:e1", "no_fx_rate", "no USD rate", "e1", "payment", "t:1:2", b"", True)],
        duplicates=[Duplicate("order:e2", "order_id", "e2", "t:1:3", False)],
        users=[user()],
        money=[money("u1", value="-12.3456")._replace(commission=Decimal("1E-30"))],
        spend=[SpendFact("cA", 1_762_000_000_000_000, DAY, "s1", "USD", Decimal("80"), Decimal("7.1"), Decimal("568"))],
        campaigns=[CampaignRow("cA", "douyin", "d1", "b1", "名字")],
        plans=[PlanRow("pB", "cr1", "d1", Decimal("0.3"))],
        fx=[FxRow("USD", DAY, Decimal("7.1"))],
    )


ALL_TABLES = ("events", "rejections", "duplicates", "users", "money", "spend", "campaigns", "plans", "fx_rates")
KINDS = {
    "events": "event", "rejections": "rejection", "duplicates": "duplicate", "users": "user", "money": "money",
    "spend": "spend", "campaigns": "campaign", "plans": "plan", "fx": "fx",
}  # fmt: skip


def test_facts_write_the_same_rows_as_engine_outputs(sink: ClickHouseSink, chdb_dir: Path) -> None:
    out = every_kind()
    facts = [Fact(kind, 7, row) for name, kind in KINDS.items() for row in getattr(out, name)]
    assert sink.write_facts(facts) == len(facts)
    other = ClickHouseSink(sink.client, f"f_{uuid.uuid4().hex}")
    migrate(other.client, other.db)
    try:
        other.write(out)
        for table in ALL_TABLES:
            query = f"SELECT * EXCEPT version FROM {{db}}.{table} ORDER BY ALL"
            mine = sink.client.query(query.format(db=sink.db), column_formats={"raw": "bytes"}).result_rows
            theirs = sink.client.query(query.format(db=other.db), column_formats={"raw": "bytes"}).result_rows
            assert mine == theirs and mine, table
        assert {v for (v,) in sink.client.query(f"SELECT version FROM {sink.db}.money").result_rows} == {7}
    finally:
        command(sink.client, f"DROP DATABASE IF EXISTS {other.db} SYNC")


def test_a_late_rejection_shows_the_bytes_of_its_event(sink: ClickHouseSink) -> None:
    raw = b'{"type":"payment","event_id":"e1","note":"\xff"}'
    sink.write_facts(
        [
            Fact("event", 1, LoggedEvent("e1", "payment", 0, "t:0:5", raw)),
            Fact("rejection", 9, Rejection("event:e1", "no_fx_rate", "no USD rate", "e1", "payment", "t:0:5", b"")),
            Fact("rejection", 2, Rejection("t:0:6", "invalid_json", "", "", "", "t:0:6", b"")),  # an empty message
            Fact("rejection", 3, Rejection("t:0:7", "invalid_json", "", "", "", "t:0:7", b"{no")),
        ]
    )
    got = recent_rejections(_bytes(sink), sink.db, 10)
    assert {r["origin"]: r["raw"] for r in got} == {"t:0:5": raw, "t:0:6": b"", "t:0:7": b"{no"}


def _bytes(sink: ClickHouseSink) -> Any:
    from functools import partial
    from types import SimpleNamespace

    return SimpleNamespace(query=partial(sink.client.query, column_formats={"raw": "bytes"}))


def test_reelroi_rejects_show_prints_a_late_rejections_bytes(store: Any) -> None:
    client = connect(store.dsn)
    migrate(client, store.database)
    ClickHouseSink(client, store.database).write_facts(
        [
            Fact("event", 1, LoggedEvent("e1", "refund", 0, "t:0:5", b'{"type":"refund","event_id":"e1"}')),
            Fact("rejection", 9, Rejection("event:e1", "unknown_order", "no payment", "e1", "refund", "t:0:5", b"")),
        ]
    )
    code, _, err = store.run("rejects", "--db", store.dsn, "--show", "5")
    assert code == 0
    assert '{"type":"refund","event_id":"e1"}' in err, err


# --------------------------------------------------------------------------- schema 0008


def _migrate_to(client: Any, db: str, last: int) -> None:
    command(client, f"CREATE DATABASE IF NOT EXISTS {db}")
    command(
        client,
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
        "applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version",
    )
    for version, name, sql in migrations():
        if version <= last:
            for statement in statements(sql):
                command(client, statement.replace("{db}", db))
            client.insert(f"{db}.schema_migrations", [(version, name)], column_names=["version", "name"])


def _money_key(client: Any, db: str, table: str = "money") -> str:
    return str(
        client.query(
            "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": db, "t": table},
        ).result_rows[0][0]
    )


@pytest.mark.parametrize("crashed_after", [0, 1, 2, 3, 4])
def test_0008_rekeys_money_and_keeps_its_rows_even_after_a_crash(chdb_dir: Path, crashed_after: int) -> None:
    client = connect(f"chdb://{chdb_dir}")
    db = f"m_{uuid.uuid4().hex}"
    try:
        _migrate_to(client, db, 7)
        old = ClickHouseSink(client, db)
        old.write(Outputs(money=[money("u1", "p1"), money("u2", "p2", "5")], users=[user("u1"), user("u2")]))
        before = roi_rows(client, db)
        (sql,) = [s for v, _, s in migrations() if v == 8]
        for statement in statements(sql)[:crashed_after]:  # a run cut short: the runner did not record it
            command(client, statement.replace("{db}", db))
        assert migrate(client, db)[:1] == [8]  # and any later migration after it
        assert _money_key(client, db) == "user_id, event_id"
        assert rows(old, "money", "user_id, event_id") == [("u1", "p1"), ("u2", "p2")]
        assert roi_rows(client, db) == before
        tables = {n for (n,) in client.query(f"SHOW TABLES FROM {db}").result_rows}
        assert not any(t.startswith("money_") for t in tables)
    finally:
        command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def test_a_rebuilds_siblings_have_the_new_key(sink: ClickHouseSink) -> None:
    build = builds.begin(sink.client, sink.db, ("money", "users"), "replay")
    assert _money_key(sink.client, sink.db, build.names["money"]) == "user_id, event_id"
    builds.abort(build)


def test_a_build_made_before_0008_is_rekeyed_when_switched_in_after_it(chdb_dir: Path) -> None:
    client = connect(f"chdb://{chdb_dir}")
    db = f"m_{uuid.uuid4().hex}"
    try:
        _migrate_to(client, db, 7)
        build = builds.begin(client, db, ("money",), "replay")  # an old binary builds...
        ClickHouseSink(client, db, tables=build.names).write(Outputs(money=[money("u1")]))
        builds._journal(client, db, build.build_id, "replay", "ready", build.tables)  # ...and dies when ready
        migrate(client, db)  # the new one opens the store: migrations first, then recovery
        assert [r.action for r in builds.recover(client, db, exclusive=True)] == ["switched"]
        assert _money_key(client, db) == "user_id, event_id"
        assert client.query(f"SELECT user_id, event_id FROM {db}.money FINAL").result_rows == [("u1", "p1")]
        tables = {n for (n,) in client.query(f"SHOW TABLES FROM {db}").result_rows}
        assert not any("__build_" in t for t in tables)
    finally:
        command(client, f"DROP DATABASE IF EXISTS {db} SYNC")
