"""Migration 0009 drops what the faust leader kept in ClickHouse: intake, attribution_offsets, attribution_epochs.

The stages replaced it (docs/design/streaming.md): facts wait in Kafka, stage
state in checkpoints. A database made before 0009 loses the three tables and
nothing else; running the migration again changes nothing; a replay no longer
builds siblings of them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from attribution.policy import Policy
from reelroi.replay import REPLAY_TABLES, replay
from schemas.framing import Record
from sinks import builds
from sinks.connection import command, connect
from sinks.schema import migrate, migrations, statements
from sinks.writer import ClickHouseSink

OLD = ("intake", "attribution_offsets", "attribution_epochs")


def tables(client: Any, db: str) -> set[str]:
    return {n for (n,) in client.query(f"SHOW TABLES FROM {db}").result_rows}


def migrate_to(client: Any, db: str, last: int) -> None:
    """Apply the migrations up to ``last`` and record them, as an older release did."""
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


def test_0009_drops_the_intake_tables_and_only_them(chdb_dir: Path) -> None:
    client = connect(f"chdb://{chdb_dir}")
    db = f"m_{uuid.uuid4().hex}"
    try:
        migrate_to(client, db, 8)
        client.insert(
            f"{db}.intake", [("t", 0, 1, b"x", 1)], column_names=["topic", "partition", "offset", "raw", "version"]
        )
        before = tables(client, db)
        assert set(OLD) <= before
        assert 9 in migrate(client, db)
        after = tables(client, db)
        assert not set(OLD) & after
        assert before - set(OLD) <= after  # every other table kept
        (sql,) = [s for v, _, s in migrations() if v == 9]
        for statement in statements(sql):  # again, as after a crash before it was recorded: nothing to drop
            command(client, statement.replace("{db}", db))
        assert not set(OLD) & tables(client, db)
    finally:
        command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def test_a_replay_builds_no_intake_sibling(chdb_dir: Path) -> None:
    client = connect(f"chdb://{chdb_dir}")
    db = f"m_{uuid.uuid4().hex}"
    try:
        migrate(client, db)
        assert not set(OLD) & set(REPLAY_TABLES)
        replay(ClickHouseSink(client, db), Policy(), [[Record("f:1", b'{"type":"click"}')]])
        assert not set(OLD) & tables(client, db)
        assert not any("__build_" in t for t in tables(client, db))
    finally:
        command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def test_a_replay_made_before_0009_and_switched_in_after_it(chdb_dir: Path) -> None:
    client = connect(f"chdb://{chdb_dir}")
    db = f"m_{uuid.uuid4().hex}"
    try:
        migrate_to(client, db, 8)
        build = builds.begin(client, db, (*REPLAY_TABLES, "intake", "attribution_offsets"), "replay")  # as then
        builds._journal(client, db, build.build_id, "replay", "ready", build.tables)  # ...and died when ready
        migrate(client, db)  # the new release opens the store: migrations first, then recovery
        assert [r.action for r in builds.recover(client, db, exclusive=True)] == ["switched"]
        assert not set(OLD) & tables(client, db)
        assert not any("__build_" in t for t in tables(client, db))
    finally:
        command(client, f"DROP DATABASE IF EXISTS {db} SYNC")
