"""Versioned, idempotent DDL: ``infra/clickhouse/NNNN_*.sql`` applied in order, once each."""

from __future__ import annotations

import re
from importlib.resources import files

from clickhouse_connect.driver.client import Client

from sinks.connection import command

_MIGRATION = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in version order."""
    found = []
    for entry in files("sinks").joinpath("migrations").iterdir():
        match = _MIGRATION.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """Split a migration file on ``;`` at line ends, dropping comment-only chunks."""
    out = []
    for chunk in re.split(r";\s*$", sql, flags=re.MULTILINE):
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            out.append(body)
    return out


def migrate(client: Client, db: str) -> list[int]:
    """Bring database ``db`` to the newest schema; returns the versions applied now."""
    command(client, f"CREATE DATABASE IF NOT EXISTS {db}")
    command(
        client,
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
        "applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version",
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        for statement in statements(sql):
            command(client, statement.replace("{db}", db))
        client.insert(f"{db}.schema_migrations", [(version, name)], column_names=["version", "name"])
        applied.append(version)
    return applied
