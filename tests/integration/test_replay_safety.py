"""A replay or reattribute that fails, is interrupted or is killed leaves the previous reports intact.

Real embedded ClickHouse throughout. In-process tests use a database of the
session chdb directory (``store``); the kill -9 test runs ``reelroi`` in
subprocesses with their own directory, since chdb opens a directory in one
process only.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from attribution.errors import ConfigError, SinkError
from attribution.policy import Policy
from reelroi.generator import GeneratorConfig, generate
from reelroi.replay import REPLAY_TABLES, replay
from reelroi.sources_io import read_records
from sinks import builds
from sinks.connection import connect
from sinks.writer import ClickHouseSink

pytestmark = pytest.mark.integration

REELROI = Path(sys.executable).with_name("reelroi")


def events(seed: int, n: int = 2_000) -> list[bytes]:
    return list(generate(GeneratorConfig(seed=seed, events=n, campaigns=6, plans=4)))


def one_line(code: int, err: str, expected_code: int = 2) -> str:
    assert code == expected_code, f"exit {code}, stderr: {err}"
    assert "Traceback" not in err, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    return lines[0]


def leftovers(store: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """Sibling tables still in the database, and builds the journal has not closed."""
    client = connect(store.dsn)
    try:
        names = client.query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE '%\\\\_\\\\_build\\\\_%'",
            parameters={"db": store.database},
        ).result_rows
        open_builds = client.query(
            f"SELECT build_id, argMax(state, version) AS s FROM {store.database}.builds GROUP BY build_id "
            "HAVING s NOT IN ('done', 'aborted')"
        ).result_rows
    finally:
        client.close()
    return [n for (n,) in names], [(b, s) for b, s in open_builds]


def assert_intact(store: Any, before: dict[str, Any]) -> None:
    assert store.reports() == before
    assert leftovers(store) == ([], [])


@pytest.fixture
def full(store: Any) -> dict[str, Any]:
    """A database with every report non-empty; returns the reports."""
    store.replay_files(store.write(events(seed=1)))
    before = store.reports()
    assert before["roi"] and before["commission"] and before["rejects"]["rejected"]
    return before


def gz(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(lines), compresslevel=6)


# --------------------------------------------------------------------------- unreadable input


def test_a_missing_file_changes_nothing(store: Any, full: dict[str, Any]) -> None:
    good = store.write(events(seed=2))
    code, _, err = store.run("replay", str(good), str(store.workdir / "nope.jsonl"), "--db", store.dsn)
    assert "nope.jsonl" in one_line(code, err)
    assert_intact(store, full)


def test_a_truncated_gz_changes_nothing(store: Any, full: dict[str, Any]) -> None:
    data = gz(events(seed=2))
    path = store.workdir / "truncated.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    # small batches: many of them reach the new tables before the end of the file is missed
    code, _, err = store.run("replay", str(path), "--db", store.dsn, "--batch-size", "100")
    assert "truncated.jsonl.gz" in one_line(code, err)
    assert_intact(store, full)


def test_a_corrupt_gz_changes_nothing(store: Any, full: dict[str, Any]) -> None:
    data = bytearray(gz(events(seed=2)))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path = store.workdir / "corrupt.jsonl.gz"
    path.write_bytes(bytes(data))
    code, _, err = store.run("replay", str(path), "--db", store.dsn, "--batch-size", "100")
    line = one_line(code, err)
    assert "corrupt.jsonl.gz" in line
    assert_intact(store, full)


@pytest.mark.parametrize("layout", ["garbage after a good gz member", "a good file, then a bad one"])
def test_a_file_that_fails_half_way_changes_nothing(store: Any, full: dict[str, Any], layout: str) -> None:
    new = events(seed=2)
    if layout == "garbage after a good gz member":
        path = store.workdir / "half.jsonl.gz"
        path.write_bytes(gz(new) + b"this is not gzip" * 10)
        files = [str(path)]
    else:
        bad = store.workdir / "bad.jsonl.gz"
        bad.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
        files = [str(store.write(new)), str(bad)]
    code, _, err = store.run("replay", *files, "--db", store.dsn, "--batch-size", "100")
    one_line(code, err)
    assert_intact(store, full)


# --------------------------------------------------------------------------- failures of the build itself


def test_ctrl_c_during_a_replay_changes_nothing(store: Any, full: dict[str, Any]) -> None:
    import reelroi.sources_io as sources_io

    real = sources_io.read_batches

    def interrupted(paths: list[str], *args: Any, **kwargs: Any) -> Any:
        for n, batch in enumerate(real(paths, *args, **kwargs)):
            if n == 3:
                raise KeyboardInterrupt
            yield batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources_io, "read_batches", interrupted)
        code, _, err = store.run("replay", str(store.write(events(seed=2))), "--db", store.dsn, "--batch-size", "100")
    assert "interrupted" in one_line(code, err, expected_code=130)
    assert_intact(store, full)


def test_a_sink_error_during_a_replay_changes_nothing(store: Any, full: dict[str, Any]) -> None:
    client = connect(store.dsn)
    sink = ClickHouseSink(client, store.database)
    records = list(read_records([str(store.write(events(seed=2)))], 100))

    def batches() -> Any:
        yield records[0]
        # the new money table disappears under the build: the next insert fails for real
        (sibling,) = [n for n in builds._comments(client, store.database) if n.startswith("money__build_")]
        client.command(f"DROP TABLE {store.database}.{sibling} SYNC")
        yield from records[1:]

    with pytest.raises(SinkError, match="money__build_"):
        replay(sink, Policy(), batches())
    client.close()
    assert_intact(store, full)


def test_a_reattribute_that_fails_changes_nothing(store: Any, full: dict[str, Any]) -> None:
    def broken(self: ClickHouseSink, page_rows: int = 50_000) -> Any:
        yield [("x:1", b"{}")]
        raise SinkError("read of the event log failed (injected)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClickHouseSink, "logged_events", broken)
        code, _, err = store.run("reattribute", "--db", store.dsn, "--click-window", "1h")
    assert "injected" in one_line(code, err)
    assert_intact(store, full)
    # and settings switch with the data: the failed policy was not recorded
    code, _, _ = store.run("reattribute", "--db", store.dsn)
    assert code == 0 and store.reports() == full


def test_a_second_build_is_refused_while_one_runs(store: Any, full: dict[str, Any]) -> None:
    client = connect(store.dsn)
    running = builds.begin(client, store.database, REPLAY_TABLES, "replay")
    with pytest.raises(ConfigError, match=f"build {running.build_id}"):
        replay(ClickHouseSink(client, store.database), Policy(), [])
    client.close()
    # the first process dies without a trace: the next open drops its tables
    code, _, err = store.run("rejects", "--db", store.dsn, "--format", "json")
    assert code == 0 and f"dropped the unfinished replay (build {running.build_id})" in err
    assert_intact(store, full)


def test_on_a_server_a_build_of_another_process_is_left_alone_until_it_goes_silent(
    store: Any, full: dict[str, Any]
) -> None:
    client = connect(store.dsn)
    running = builds.begin(client, store.database, REPLAY_TABLES, "replay")
    assert builds.recover(client, store.database, exclusive=False) == []  # fresh: someone is writing it
    assert len(leftovers(store)[0]) == len(REPLAY_TABLES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builds, "STALE_S", 0.0)  # as if its heartbeat had stopped long ago
        dropped = builds.recover(client, store.database, exclusive=False)
    client.close()
    assert dropped == [builds.Recovered(running.build_id, "replay", "dropped")]
    assert_intact(store, full)


# --------------------------------------------------------------------------- a crash during the switch


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs, no clean-up either."""


@pytest.mark.parametrize("die_at", ["exchange 1", "exchange 2", "exchange 9", "drop 1"])
def test_a_switch_cut_short_is_finished_at_the_next_open(store: Any, die_at: str) -> None:
    new = store.write(events(seed=2))
    store.replay_files(new)
    expected = store.reports()
    store.new_database()
    store.replay_files(store.write(events(seed=1)))
    old = store.reports()
    assert old != expected

    stage, n = die_at.split()
    seen = {"exchange": 0, "drop": 0}
    real = builds.command

    def dying(client: Any, sql: str, parameters: Any = None) -> Any:
        kind = "exchange" if sql.startswith("EXCHANGE") else "drop" if sql.startswith("DROP") else ""
        if kind:
            seen[kind] += 1
            if kind == stage and seen[kind] == int(n):
                raise Killed
        return real(client, sql, parameters)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(builds, "command", dying)
        store.run("replay", str(new), "--db", store.dsn)
    client = connect(store.dsn)
    marks = {c for t, c in builds._comments(client, store.database).items() if t in REPLAY_TABLES}
    client.close()
    if stage == "exchange" and n != "1":
        assert len(marks) == 2, "the simulated crash left some tables switched and some not"

    code, _, err = store.run("roi", "--db", store.dsn, "--format", "json")
    assert code == 0 and "finished switching in the replay" in err
    assert store.reports() == expected
    assert leftovers(store) == ([], [])


def test_the_switch_never_swaps_back_when_run_again(store: Any) -> None:
    store.replay_files(store.write(events(seed=1)))
    client = connect(store.dsn)
    comments = builds._comments(client, store.database)
    build_id = comments["money"].removeprefix(builds.MARK)
    assert comments["money"] == builds.MARK + build_id
    before = store.reports()
    builds.switch(client, store.database, build_id, "replay", REPLAY_TABLES)  # a recovery racing a finished switch
    assert builds.recover(client, store.database, exclusive=True) == []
    client.close()
    assert store.reports() == before


# --------------------------------------------------------------------------- success still replaces everything


def test_a_successful_replay_replaces_everything_and_keeps_tokens(store: Any, full: dict[str, Any]) -> None:
    code, _, _ = store.run("token", "create", "--role", "admin", "--db", store.dsn)
    assert code == 0
    new = store.write(events(seed=2))
    store.replay_files(new)
    after = store.reports()
    code, out, _ = store.run("token", "list", "--db", store.dsn, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 1
    assert leftovers(store) == ([], [])
    store.new_database()
    store.replay_files(new)
    assert store.reports() == after != full


# --------------------------------------------------------------------------- kill -9 of a real replay


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REELROI_")}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REELROI), *args], capture_output=True, text=True, env=_env(), timeout=300)


def _reports(db: str) -> tuple[dict[str, str], str]:
    out, err = {}, ""
    for command in ("roi", "commission", "rejects"):
        proc = _cli(command, "--db", db, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        out[command], err = proc.stdout, err + proc.stderr
    return out, err


def _build_parts(directory: Path) -> int:
    """Data parts written so far into the sibling of ``events`` of a running build (0 if none yet)."""
    for meta in (directory / "metadata" / "reelroi").glob("events__build_*.sql"):
        found = re.search(r"UUID '([0-9a-f-]+)'", meta.read_text(errors="replace"))
        if found:
            uuid = found.group(1)
            return sum(1 for p in (directory / "store" / uuid[:3] / uuid).glob("all_*") if p.is_dir())
    return 0


def test_kill_9_in_the_middle_of_a_replay_leaves_the_previous_reports(tmp_path: Path) -> None:
    directory = tmp_path / "chdb"
    db = f"chdb://{directory}"
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    assert _cli("generate", "--events", "3000", "--seed", "1", "--out", str(small)).returncode == 0
    assert _cli("generate", "--events", "400000", "--seed", "7", "--out", str(big)).returncode == 0
    assert _cli("replay", str(small), "--db", db).returncode == 0
    before, _ = _reports(db)

    proc = subprocess.Popen(
        [str(REELROI), "replay", str(big), "--db", db, "--batch-size", "5000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    deadline = time.monotonic() + 120
    while (
        _build_parts(directory) < 1
    ):  # into the build: rows written beside the live tables (replay inserts in large blocks)
        assert proc.poll() is None, "the replay ended before it could be killed in the middle"
        assert time.monotonic() < deadline, "the build never started writing"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL

    after, notes = _reports(db)
    assert after == before
    assert "dropped the unfinished replay" in notes
    assert not list((directory / "metadata" / "reelroi").glob("*__build_*"))
