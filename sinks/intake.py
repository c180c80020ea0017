"""The streaming intake in ClickHouse: raw Kafka records in, pages of them out in offset order.

Intake workers (any number, one per set of partitions) append what they take
from Kafka; the one attributor reads it back partition by partition after its
cursor. Per partition, intake holds a prefix of the Kafka log: a worker writes
each batch's records of a partition as one contiguous run, in one insert, and a
worker that takes a partition over starts at the committed offset, at or before
the first record nobody has written. So "offset >= cursor" never skips a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from clickhouse_connect.driver.client import Client

from sinks.connection import translate

TP = tuple[str, int]  # (topic, partition)
_INTAKE_TYPES = ["String", "UInt32", "UInt64", "DateTime64(3, 'UTC')", "String", "String", "UInt64"]


class IntakeRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    appended_ms: int  # the Kafka record timestamp
    raw: bytes  # empty for a null value (a tombstone)
    undecodable: str = ""  # why, for a record batch no codec could decode (kept whole, never read as lines)

    @property
    def origin(self) -> str:
        return f"kafka:{self.topic}:{self.partition}:{self.offset}"


def parse_origin(origin: str) -> tuple[TP, int] | None:
    """((topic, partition), offset) of a ``kafka:topic:partition:offset[:line]`` origin, else None.

    Kafka topic names cannot hold a colon, so the parts split unambiguously.
    """
    if not origin.startswith("kafka:"):
        return None
    parts = origin.split(":")
    if len(parts) not in (4, 5):
        return None
    return (parts[1], int(parts[2])), int(parts[3])


class IntakeStore:
    """The ``intake``, ``attribution_offsets`` and ``attribution_epochs`` tables of ``db``."""

    def __init__(self, client: Client, db: str) -> None:
        self.client = client
        self.db = db

    def append(self, records: list[IntakeRecord], version: int) -> None:
        if not records:
            return
        columns = [list(c) for c in zip(*records, strict=True)]
        try:
            self.client.insert(
                f"{self.db}.intake",
                [*columns, [version] * len(records)],
                column_names=["topic", "partition", "offset", "appended", "raw", "undecodable", "version"],
                column_type_names=_INTAKE_TYPES,
                column_oriented=True,
            )
        except Exception as exc:
            raise translate(exc, f"insert into {self.db}.intake failed") from exc

    def page(self, cursor: Mapping[TP, int], limit: int) -> list[IntakeRecord]:
        """Up to ``limit`` records at or after ``cursor`` (next offset per partition), in partition order.

        A partition missing from ``cursor`` starts at 0. Copies of a record may come
        back twice (before ClickHouse merges them); callers skip offsets below their cursor.
        """
        keys = [f"{t}:{p}" for (t, p) in cursor]
        try:
            result = self.client.query(
                f"SELECT topic, partition, offset, toUnixTimestamp64Milli(appended), raw, undecodable FROM {self.db}.intake "
                "WHERE offset >= mapFromArrays({keys:Array(String)}, {offsets:Array(UInt64)})"
                "[concat(toString(topic), ':', toString(partition))] "
                "ORDER BY topic, partition, offset LIMIT {n:UInt32}",
                parameters={"keys": keys, "offsets": list(cursor.values()), "n": limit},
                column_formats={"raw": "bytes"},  # the record's own bytes, UTF-8 or not (never a hex string)
            )
        except Exception as exc:
            raise translate(exc, f"read of {self.db}.intake failed") from exc
        return [
            IntakeRecord(t, p, o, ms, raw if isinstance(raw, bytes) else raw.encode(), why)
            for t, p, o, ms, raw, why in result.result_rows
        ]

    def _rows(self, sql: str) -> list[Any]:
        try:
            return list(self.client.query(sql).result_rows)
        except Exception as exc:
            raise translate(exc, "ClickHouse query failed") from exc

    def trim(self, cursor: Mapping[TP, int], wait: bool = False) -> None:
        """Delete the intake records below ``cursor`` (attributed: the event log, rejections and
        duplicates hold what they were). Partitions missing from ``cursor`` keep everything."""
        keys = [f"{t}:{p}" for (t, p) in cursor]
        try:
            self.client.command(
                f"ALTER TABLE {self.db}.intake DELETE WHERE offset < mapFromArrays({{keys:Array(String)}}, "
                "{offsets:Array(UInt64)})[concat(toString(topic), ':', toString(partition))] "
                f"SETTINGS mutations_sync = {2 if wait else 0}",
                parameters={"keys": keys, "offsets": list(cursor.values())},
            )
        except Exception as exc:
            raise translate(exc, f"trim of {self.db}.intake failed") from exc

    def heads(self) -> dict[TP, int]:
        """The next offset after the last intake record, per partition (what exists to attribute)."""
        rows = self._rows(f"SELECT topic, partition, max(offset) + 1 FROM {self.db}.intake GROUP BY 1, 2")
        return {(t, p): n for t, p, n in rows}

    def offsets(self) -> dict[TP, int]:
        """The attributor's saved cursor: next offset to attribute, per partition."""
        rows = self._rows(
            f"SELECT topic, partition, argMax(next_offset, version) FROM {self.db}.attribution_offsets GROUP BY 1, 2"
        )
        return {(t, p): n for t, p, n in rows}

    def save_offsets(self, offsets: Mapping[TP, int], epoch: int, version: int) -> None:
        if not offsets:
            return
        rows = [(t, p, n, epoch, version) for (t, p), n in offsets.items()]
        try:
            self.client.insert(
                f"{self.db}.attribution_offsets",
                rows,
                column_names=["topic", "partition", "next_offset", "epoch", "version"],
            )
        except Exception as exc:
            raise translate(exc, f"insert into {self.db}.attribution_offsets failed") from exc

    def claim_epoch(self, epoch: int, worker: str, started_ms: int) -> None:
        try:
            self.client.insert(
                f"{self.db}.attribution_epochs",
                [[epoch], [worker], [started_ms]],
                column_names=["epoch", "worker", "started"],
                column_type_names=["UInt64", "String", "DateTime64(3, 'UTC')"],
                column_oriented=True,
            )
        except Exception as exc:
            raise translate(exc, f"insert into {self.db}.attribution_epochs failed") from exc

    def current_epoch(self) -> int:
        return int(self._rows(f"SELECT max(epoch) FROM {self.db}.attribution_epochs")[0][0])
