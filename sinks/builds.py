"""Build beside, then switch: how a rebuild replaces tables without ever leaving them empty.

``reelroi replay`` and ``reelroi reattribute`` write every table they replace
as a sibling in the same database (``money__build_<id>``, same DDL, a table
COMMENT naming the build). Only when everything is written does the journal
(``builds``) say *ready*, in one insert; then each live table is swapped with
its sibling (``EXCHANGE TABLES``, atomic per table) and the siblings, now
holding the old data, are dropped. A failure, a Ctrl-C or a kill -9 before
*ready* leaves the live tables as they were (the siblings are dropped, now or
at the next open); one after *ready* is finished by the next open
(``recover``). The switch is idempotent: a live table whose COMMENT names the
build was already exchanged, so running it twice never swaps back.

On a server another process may be building or switching right now, so its
builds are left alone until their journal row is stale; the embedded engine
opens a directory in one process only, so there nothing else can be running.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

from clickhouse_connect.driver.client import Client

from attribution.errors import ConfigError, FatalSinkError, SinkError
from sinks.connection import command, translate

T = TypeVar("T")
SUFFIX = "__build_"
MARK = "reelroi build "
_BUILD_TABLE = re.compile(r"(?P<table>[a-z_]+?)__build_(?P<id>[0-9a-f]{16})")
HEARTBEAT_S = 10.0
# How long a server-side build may stay silent before it counts as abandoned (a
# batch writes a heartbeat every HEARTBEAT_S), and how long a ready build is
# left to its own process to switch (a switch takes milliseconds).
STALE_S = 600.0
READY_GRACE_S = 60.0


def build_table(table: str, build_id: str) -> str:
    return f"{table}{SUFFIX}{build_id}"


@dataclass
class Build:
    """One rebuild in progress: its id, the live tables it replaces, their siblings."""

    client: Client
    db: str
    build_id: str
    command: str
    tables: tuple[str, ...]
    _beat: float = field(default=0.0, repr=False)

    @property
    def names(self) -> dict[str, str]:
        """Live table name -> the sibling this build writes."""
        return {t: build_table(t, self.build_id) for t in self.tables}

    def alive(self, batches: Iterable[T]) -> Iterator[T]:
        """Pass ``batches`` through, noting in the journal now and then that this build is still running."""
        for batch in batches:
            if time.monotonic() - self._beat > HEARTBEAT_S:
                self._beat = time.monotonic()
                _journal(self.client, self.db, self.build_id, self.command, "building", self.tables)
            yield batch


def begin(client: Client, db: str, tables: tuple[str, ...], what: str) -> Build:
    """Create empty siblings of ``tables`` for a new build (refused while another build runs)."""
    busy = [b for b in _builds(client, db) if b.state in ("building", "ready") and b.age < STALE_S]
    if busy:
        raise ConfigError(
            f"another {busy[0].command} is rebuilding database {db} (build {busy[0].build_id}); wait for it to finish"
        )
    build = Build(client, db, uuid.uuid4().hex[:16], what, tables, time.monotonic())
    _journal(client, db, build.build_id, what, "building", tables)
    try:
        for table, sibling in build.names.items():
            command(client, f"CREATE TABLE {db}.{sibling} AS {db}.{table} COMMENT '{MARK}{build.build_id}'")
    except BaseException:
        _quietly_abort(build)
        raise
    return build


def commit(build: Build) -> None:
    """Mark ``build`` ready (one atomic insert), then switch it in; refused if a sibling went missing."""
    comments = _comments(build.client, build.db)
    lost = [t for t, sibling in build.names.items() if sibling not in comments]
    if lost:  # only another process can have dropped them (a server); never switch in half a build
        raise FatalSinkError(f"build {build.build_id} lost its tables for {', '.join(lost)}; nothing was switched")
    _journal(build.client, build.db, build.build_id, build.command, "ready", build.tables)
    switch(build.client, build.db, build.build_id, build.command, build.tables)


def abort(build: Build) -> None:
    """Drop the siblings of a failed build; the live tables were never touched."""
    _drop(build.client, build.db, build.names.values())
    _journal(build.client, build.db, build.build_id, build.command, "aborted", build.tables)


def switch(client: Client, db: str, build_id: str, what: str, tables: tuple[str, ...]) -> None:
    """Exchange each live table with its sibling, unless already done, then drop the old data.

    Safe to run again after a crash at any point: a live table that carries
    this build's COMMENT has been exchanged already.
    """
    comments = _comments(client, db)
    keys = _sorting_keys(client, db)
    for table in tables:
        sibling = build_table(table, build_id)
        if comments.get(table) == MARK + build_id:
            continue  # exchanged before a crash
        if sibling not in comments:
            raise FatalSinkError(
                f"build {build_id}: {sibling} is gone and {table} was not switched; see sinks/builds.py"
            )
        if table not in comments:
            continue  # dropped by a migration since the build began (0009: intake): its sibling goes with the rest
        if keys.get(sibling) != keys.get(table):
            _rekey(client, db, table, sibling, build_id)
        command(client, f"EXCHANGE TABLES {db}.{table} AND {db}.{sibling}")
    _drop(client, db, (build_table(t, build_id) for t in tables))
    _journal(client, db, build_id, what, "done", tables)


@contextmanager
def building(client: Client, db: str, tables: tuple[str, ...], what: str) -> Iterator[Build]:
    """A build of ``tables``: switched in when the block completes, dropped if it raises (Ctrl-C too)."""
    build = begin(client, db, tables, what)
    try:
        yield build
    except BaseException:
        _quietly_abort(build)
        raise
    commit(build)


def _quietly_abort(build: Build) -> None:
    # if even the clean-up fails, the next open drops what is left; the first error is the one to report
    with suppress(SinkError):
        abort(build)


@dataclass(frozen=True)
class Recovered:
    build_id: str
    command: str
    action: str  # "switched" or "dropped"


def recover(client: Client, db: str, exclusive: bool) -> list[Recovered]:
    """Finish what interrupted builds left: switch in ready ones, drop the siblings of the rest.

    ``exclusive``: no other process can be using this database (the embedded
    engine), so nothing in flight needs to be waited for.
    """
    done: list[Recovered] = []
    ready_grace, stale = (0.0, 0.0) if exclusive else (READY_GRACE_S, STALE_S)
    keep: set[str] = set()
    for b in _builds(client, db):
        if b.state == "ready" and b.age >= ready_grace:
            switch(client, db, b.build_id, b.command, b.tables)
            done.append(Recovered(b.build_id, b.command, "switched"))
        elif b.state in ("ready", "building") and b.age < stale:
            keep.add(b.build_id)
        elif b.state == "building":
            _journal(client, db, b.build_id, b.command, "aborted", b.tables)
            done.append(Recovered(b.build_id, b.command, "dropped"))
    siblings = [
        name for name in _comments(client, db) if (m := _BUILD_TABLE.fullmatch(name)) and m.group("id") not in keep
    ]
    _drop(client, db, siblings)
    return done


@dataclass(frozen=True)
class _Entry:
    build_id: str
    command: str
    state: str
    tables: tuple[str, ...]
    age: float  # seconds since its latest journal row, by the server's clock


def _builds(client: Client, db: str) -> list[_Entry]:
    """The latest state of every build not yet done or aborted."""
    try:
        rows = client.query(
            "SELECT build_id, argMax(command, version), argMax(state, version), argMax(tables, version), "
            f"dateDiff('millisecond', max(at), now64(3)) / 1000 FROM {db}.builds GROUP BY build_id ORDER BY build_id"
        ).result_rows
    except Exception as exc:
        raise translate(exc, f"read of {db}.builds failed") from exc
    return [
        _Entry(bid, what, state, tuple(tables), float(age))
        for bid, what, state, tables, age in rows
        if state in ("building", "ready")
    ]


def _journal(client: Client, db: str, build_id: str, what: str, state: str, tables: tuple[str, ...]) -> None:
    try:
        client.insert(
            f"{db}.builds",
            [(build_id, what, state, list(tables), time.time_ns())],
            column_names=["build_id", "command", "state", "tables", "version"],
        )
    except Exception as exc:
        raise translate(exc, f"write of {db}.builds failed") from exc


def _comments(client: Client, db: str) -> dict[str, str]:
    """Every table of ``db`` with its COMMENT."""
    try:
        rows = client.query(
            "SELECT name, comment FROM system.tables WHERE database = {db:String}", parameters={"db": db}
        ).result_rows
    except Exception as exc:
        raise translate(exc, "read of system.tables failed") from exc
    return {str(name): str(comment) for name, comment in rows}


def _sorting_keys(client: Client, db: str) -> dict[str, str]:
    try:
        rows = client.query(
            "SELECT name, sorting_key FROM system.tables WHERE database = {db:String}", parameters={"db": db}
        ).result_rows
    except Exception as exc:
        raise translate(exc, "read of system.tables failed") from exc
    return {str(name): str(key) for name, key in rows}


def _rekey(client: Client, db: str, table: str, sibling: str, build_id: str) -> None:
    """Copy ``sibling`` into the live table's current DDL before it is switched in.

    A build made before a migration changed a sort key (0008: money by user and
    event) and switched in after it would bring the old key back under a schema
    version that says otherwise. The copy is named like a sibling, so a crash
    here leaves nothing that ``recover`` does not drop.
    """
    copy = build_table(f"{table}_rekey", build_id)
    _drop(client, db, [copy])
    command(client, f"CREATE TABLE {db}.{copy} AS {db}.{table} COMMENT '{MARK}{build_id}'")
    command(client, f"INSERT INTO {db}.{copy} SELECT * FROM {db}.{sibling}")
    command(client, f"EXCHANGE TABLES {db}.{sibling} AND {db}.{copy}")
    _drop(client, db, [copy])


def _drop(client: Client, db: str, tables: Iterable[str]) -> None:
    # SYNC: an Atomic database would otherwise keep the data on disk for minutes
    for table in tables:
        command(client, f"DROP TABLE IF EXISTS {db}.{table} SYNC")
