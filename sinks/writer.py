"""The ClickHouse sink: writes engine outputs and stage facts in large, idempotent batches."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping

from clickhouse_connect.driver.client import Client

from attribution.outputs import ORDER_DUPLICATE, STATE_KEY_PREFIX, Outputs
from attribution.stages.facts import Fact
from sinks.connection import command, translate
from sinks.rows import Block, blocks, fact_blocks

# Derived tables: what replay and reattribute rebuild.
DERIVED_TABLES = ("rejections", "duplicates", "users", "money", "spend", "campaigns", "plans", "fx_rates")
# With the event log: everything a replay replaces.
ALL_TABLES = ("events", *DERIVED_TABLES)
# Not derived, so neither truncated nor rebuilt by a replay or reattribute (SPEC 7):
# postback_deliveries records what was really sent to an ad platform, which no replay
# can unsend, and a platform must never get one conversion twice; postback_decisions
# are made once, at the data clock of their time (a replay does not make them by
# default, attribution/stages/local.py), so replacing them would rewrite history the
# sender already acted on. Both are keyed by the idempotency key, which a rebuild
# reproduces, so the ledger of an older run still guards a newer one.
POSTBACK_TABLES = ("postback_decisions", "postback_deliveries")
# In these tables only some rows come from engine state; the others record input lines.
_STATE_ROWS = {
    "rejections": f" AND startsWith(key, '{STATE_KEY_PREFIX}')",
    "duplicates": f" AND kind = '{ORDER_DUPLICATE}'",
}


def load_settings(client: Client, db: str, table: str = "settings") -> dict[str, str]:
    """The saved settings (the policy a database was built with), latest value of each."""
    result = client.query(f"SELECT name, argMax(value, version) FROM {db}.{table} GROUP BY name")
    return {name: value for name, value in result.result_rows}


class VersionClock:
    """Strictly increasing row versions (nanoseconds), so a later write always wins."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(time.time_ns(), self._last + 1)
        return self._last

    def advance_past(self, version: int) -> None:
        """Make every later version greater than ``version`` (one written by another machine's clock)."""
        self._last = max(self._last, version)


class ClickHouseSink:
    """Writes ``Outputs`` into database ``db``. Safe to call again with the same outputs.

    ``tables`` renames tables (e.g. to the siblings of a rebuild, sinks/builds.py);
    a table not in it keeps its own name.
    """

    def __init__(
        self,
        client: Client,
        db: str,
        clock: VersionClock | None = None,
        log_events: bool = True,
        tables: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.clock = clock or VersionClock()
        self.rows_written = 0
        # False when the outputs come from the event log itself (reattribute, a worker's rebuild)
        self.log_events = log_events
        self.tables = dict(tables or {})

    def table(self, name: str) -> str:
        """The qualified table this sink uses for ``name``."""
        return f"{self.db}.{self.tables.get(name, name)}"

    def into(self, tables: Mapping[str, str], log_events: bool | None = None) -> ClickHouseSink:
        """A sink on the same connection and clock that writes to renamed ``tables``."""
        keep = self.log_events if log_events is None else log_events
        return ClickHouseSink(self.client, self.db, self.clock, keep, tables)

    def write(self, out: Outputs) -> int:
        """Insert every block of ``out`` under one fresh version; returns rows written."""
        return self._insert(blocks(out, self.clock.next()))

    def write_facts(self, facts: Iterable[Fact]) -> int:
        """Insert facts, each row under its own version (per key, only the greatest is sent); returns rows written.

        Safe to repeat and in any order: a table keeps, per key, the row of the
        greatest version, so a re-sent or older fact changes nothing.
        """
        return self._insert(fact_blocks(facts))

    def _insert(self, versioned: list[Block]) -> int:
        written = 0
        for block in versioned:
            if block.table == "events" and not self.log_events:
                continue
            target = self.table(block.table)
            try:
                self.client.insert(
                    target, block.data, column_names=block.columns, column_type_names=block.types, column_oriented=True
                )
            except Exception as exc:
                raise translate(exc, f"insert into {target} failed") from exc
            written += len(block)
        self.rows_written += written
        return written

    def drop_derived_older_than(self, version: int) -> None:
        """Delete derived rows written before ``version`` (after a full rewrite at or above it).

        Rows about input lines rather than state (structural rejections, by-event_id
        duplicates) are kept: a rebuild from the event log does not produce them.
        """
        for table in DERIVED_TABLES:
            command(
                self.client,
                f"ALTER TABLE {self.table(table)} DELETE WHERE version < {int(version)}{_STATE_ROWS.get(table, '')} "
                "SETTINGS mutations_sync = 2",
            )

    def max_version(self) -> int:
        """The greatest row version in the derived tables (0 when empty)."""
        union = " UNION ALL ".join(f"SELECT max(version) AS v FROM {self.table(t)}" for t in DERIVED_TABLES)
        try:
            return int(self.client.query(f"SELECT max(v) FROM ({union})").result_rows[0][0])
        except Exception as exc:
            raise translate(exc, "ClickHouse query failed") from exc

    def truncate(self, tables: tuple[str, ...] = ALL_TABLES) -> None:
        for table in tables:
            command(self.client, f"TRUNCATE TABLE IF EXISTS {self.table(table)}")

    def save_settings(self, values: dict[str, str]) -> None:
        version = self.clock.next()
        rows = [(k, v, version) for k, v in values.items()]
        try:
            self.client.insert(self.table("settings"), rows, column_names=["name", "value", "version"])
        except Exception as exc:
            raise translate(exc, f"insert into {self.table('settings')} failed") from exc

    def load_settings(self) -> dict[str, str]:
        return load_settings(self.client, self.db, self.tables.get("settings", "settings"))

    def logged_events(self, page_rows: int = 50_000) -> Iterator[list[tuple[str, bytes]]]:
        """The stored event log as (origin, raw) pages, for re-attribution.

        Keyset pages over the sort key, each query fully read before the caller
        writes: an embedded connection cannot stream and insert at once.
        """
        last = ""
        while True:
            try:
                result = self.client.query(
                    f"SELECT event_id, origin, raw FROM {self.table('events')} FINAL "
                    "WHERE event_id > {last:String} ORDER BY event_id LIMIT {n:UInt32}",
                    parameters={"last": last, "n": page_rows},
                )
            except Exception as exc:
                raise translate(exc, f"read of {self.table('events')} failed") from exc
            rows = result.result_rows
            if not rows:
                return
            last = rows[-1][0]
            yield [(origin, raw if isinstance(raw, bytes) else raw.encode()) for _, origin, raw in rows]
