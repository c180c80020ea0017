"""``reelroi replay`` and ``reattribute`` in bounded pieces (reelroi/replay_passes.py), in worker processes.

Small buckets (``REELROI_REPLAY_BUCKET_EVENTS``) and small batches force many
buckets, spawned workers and several pass-0 batches on a small world; the
reports must equal the independent oracle's, a failure must leave no spill
file and the live tables as they were, and a reattribute must equal a replay
under the same policy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from attribution import testing as kit
from attribution.policy import Policy
from reelroi import replay_passes
from reelroi.replay import reattribute, replay
from sinks.connection import connect
from sinks.schema import migrate
from sinks.writer import ClickHouseSink
from tests.integration.test_against_oracle import _generated, assert_same, check
from tests.oracle_worlds import HEALTH, event_sets
from tests.reference.spec_oracle import read_event_lines, reference_reports

pytestmark = pytest.mark.integration


@pytest.fixture
def small_buckets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    spill = tmp_path / "spill"
    monkeypatch.setenv("REELROI_REPLAY_BUCKET_EVENTS", "2500")
    monkeypatch.setenv("REELROI_REPLAY_WORKERS", "2")
    monkeypatch.setenv("REELROI_REPLAY_SPILL_DIR", str(spill))
    return spill


def test_bucketed_replay_in_workers_matches_oracle(store: Any, small_buckets: Path) -> None:
    lines = _generated(seed=21, events=20_000, days=2, malformed_share=0.02, duplicate_share=0.1)
    actual = check(store, lines, extra=("--batch-size", "3000"))
    assert actual["roi"] and actual["commission"]
    assert not any(small_buckets.iterdir())


def test_bucketed_replay_of_shuffled_lines_matches_oracle(store: Any, small_buckets: Path) -> None:
    import random

    lines = _generated(seed=22, events=12_000, days=2)
    random.Random(5).shuffle(lines)
    check(store, lines, extra=("--batch-size", "2000", "--tz", "UTC"), tz="UTC")


def test_a_failed_replay_leaves_no_spill_files_and_the_live_tables(store: Any, small_buckets: Path) -> None:
    lines = _generated(seed=23, events=8_000, days=1)
    path = store.write(lines)
    store.replay_files(path)
    before = store.reports()
    records = kit.records(lines)

    def batches() -> Any:
        yield records[:3000]
        yield records[3000:6000]
        raise OSError("disk gone")

    client = connect(store.dsn)
    try:
        with pytest.raises(OSError, match="disk gone"):
            replay(ClickHouseSink(client, store.database), Policy(), batches())
    finally:
        client.close()
    assert not any(small_buckets.iterdir())
    assert_same(store.reports(), before)


def test_a_stage_failing_in_this_process_cleans_up_too(
    store: Any, small_buckets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELROI_REPLAY_WORKERS", "1")
    store.replay(read_event_lines(Path(__file__).parent.parent / "data" / "spec_example.jsonl"))
    before = store.reports()

    def broken(*args: Any) -> Any:
        raise RuntimeError("stage broke")

    monkeypatch.setattr(replay_passes, "stage_task", broken)
    client = connect(store.dsn)
    try:
        with pytest.raises(RuntimeError, match="stage broke"):
            replay(ClickHouseSink(client, store.database), Policy(), [kit.records(_generated(seed=24, events=3000))])
    finally:
        client.close()
    assert not any(small_buckets.iterdir())
    assert_same(store.reports(), before)


def test_bucketed_reattribute_equals_a_replay_under_the_new_policy(
    store: Any, small_buckets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _generated(seed=25, events=20_000, days=2)
    shorter = Policy(click_window_s=2 * 3600, view_window_s=45 * 60)
    path = store.write(lines)
    store.replay_files(path, extra=("--batch-size", "5000"))
    client = connect(store.dsn)
    try:
        migrate(client, store.database)
        stats = reattribute(ClickHouseSink(client, store.database), shorter)
    finally:
        client.close()
    assert stats.records == stats.events  # the log holds each event once
    expected = reference_reports(read_event_lines(path), click_window_s=2 * 3600, view_window_s=45 * 60)
    assert_same(store.reports(), expected)
    assert not any(small_buckets.iterdir())


@settings(max_examples=25, deadline=None, suppress_health_check=HEALTH)
@given(lines=event_sets(multi_hour_spend=True))
def test_random_small_worlds_in_many_buckets_match_oracle(store: Any, lines: list[bytes]) -> None:
    """The oracle's small worlds with a bucket per 3 events: every stage split over many buckets."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REELROI_REPLAY_BUCKET_EVENTS", "3")
        patch.setenv("REELROI_REPLAY_WORKERS", "1")
        store.new_database()
        check(store, lines)


def _copies(store: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(event_id -> origin of its event-log row, event_id -> origins counted as its duplicates)."""
    client = connect(store.dsn)
    try:
        logged = dict(client.query(f"SELECT event_id, origin FROM {store.database}.events FINAL").result_rows)
        copies: dict[str, list[str]] = {}
        for event_id, origin in client.query(
            f"SELECT event_id, origin FROM {store.database}.duplicates FINAL WHERE kind = 'event_id' AND NOT is_deleted"
        ).result_rows:
            copies.setdefault(event_id, []).append(origin)
    finally:
        client.close()
    return logged, copies


def test_the_first_line_of_an_event_is_the_copy_that_counts_in_every_run(store: Any, small_buckets: Path) -> None:
    """Copies 25,000 lines apart land in different pass-0 tasks of different workers: still, the earliest line is
    the one logged and counted, the later ones are the duplicates, and a second replay writes the same rows."""
    lines = _generated(seed=26, events=30_000, days=1, malformed_share=0.0, duplicate_share=0.0)
    copied, n = lines[10:40], len(lines)  # lines 11 to 40
    lines = lines[:25_000] + copied + lines[25_000:] + copied  # each copied line three times, far apart
    path = store.write(lines)
    line_of = lambda origin: int(origin.rsplit(":", 1)[1])  # noqa: E731
    runs = []
    for _ in range(2):
        store.new_database()
        store.replay_files(path, extra=("--batch-size", "4000"))
        runs.append(_copies(store))
    assert runs[0] == runs[1]
    logged, copies = runs[0]
    ids = {orjson.loads(line)["event_id"] for line in copied}
    assert ids <= copies.keys()
    for event_id in ids:
        first = line_of(logged[event_id])
        assert 11 <= first <= 40, (event_id, logged[event_id])
        assert sorted(line_of(o) for o in copies[event_id]) == [first + 24_990, first + n + 20]


def test_raw_bytes_reach_the_event_log_and_rejections_exactly(store: Any, small_buckets: Path) -> None:
    """Rows carrying input bytes go to the engine TabSeparated (reelroi/replay_codec.py): tabs, backslashes, CRs,
    NULs and bytes that are not UTF-8 come back byte for byte, in events and in rejections."""
    valid = [
        b'{"type":"impression","event_id":"e\\\\1\\t","ts":"2026-11-01T08:00:00+08:00","campaign_id":"c\\"x",'
        b'"device_id":"d1","note":"\\\\N \\u00e9 \xe9\x95\xbf"}',
        b'{"type":"impression","event_id":"e2","ts":"2026-11-01T08:00:01+08:00","campaign_id":"c","device_id":"d2"}',
    ]
    rejected = [b"\xff\xfe not utf-8 \\N", b'{"a":"\t tab"}', b"mid \r cr", b"nul \x00 byte", b"\\", b"\\N"]
    lines = [*valid, *rejected] * 3000  # enough lines for several pass-0 tasks in two workers
    store.replay_files(store.write(lines))
    client = connect(store.dsn)
    try:
        events = dict(client.query(f"SELECT event_id, hex(raw) FROM {store.database}.events FINAL").result_rows)
        raws = {r[0] for r in client.query(f"SELECT hex(raw) FROM {store.database}.rejections FINAL").result_rows}
    finally:
        client.close()
    assert {k: bytes.fromhex(v) for k, v in events.items()} == {"e\\1\t": valid[0], "e2": valid[1]}
    assert {bytes.fromhex(r) for r in raws} == set(rejected)


def test_the_parent_inserts_held_rows_files_together_each_row_once(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows files of several tasks are inserted where they lie, as one path of names in braces, once they
    hold ``FLUSH_ROWS`` rows or number ``FLUSH_FILES`` (or at ``flush``): every row once, every file gone,
    none copied first."""
    from datetime import date
    from decimal import Decimal

    from attribution.errors import SinkError
    from attribution.outputs import MoneyFact
    from attribution.stages.facts import Fact
    from reelroi.replay_tasks import Spill, _write_rows

    def money(n: int) -> Fact:
        row = MoneyFact(
            f"au-{n}", "ad_unlock", f"u{n}", "", 1_762_160_854_000_000 + n, date(2026, 11, 3), "campaign", "c1",
            date(2026, 11, 2), "CNY", Decimal("0.05"), Decimal(1), Decimal("0.05"), "", Decimal(0),
        )  # fmt: skip
        return Fact("money", n, row)

    client = connect(store.dsn)
    try:
        migrate(client, store.database)
        sink = ClickHouseSink(client, store.database)
        spill = Spill(tmp_path / "spill")
        spill.make()
        monkeypatch.setattr(replay_passes, "FLUSH_FILES", 5)
        inserter = replay_passes.Inserter(sink)
        written = [_write_rows(spill, f"stage.user-{p}", [money(p * 10 + i) for i in range(10)]) for p in range(7)]
        paths = [Path(path) for rows in written for _, path, _ in rows]
        for rows in written[:4]:
            inserter.insert(rows)
        assert all(path.exists() for path in paths)  # held: below a full insert
        inserter.insert(written[4])  # the fifth file: inserted with the four held
        assert not any(path.exists() for path in paths[:5]) and all(path.exists() for path in paths[5:])
        assert inserter.rows == 50
        for rows in written[5:]:
            inserter.insert(rows)
        inserter.flush()
        count = f"SELECT count(), uniqExact(event_id) FROM {store.database}.money"
        assert client.query(count).result_rows == [(70, 70)]
        assert inserter.rows == 70
        assert not any(path.exists() for path in paths)
        assert sorted(p.name for p in (tmp_path / "spill" / "rows").iterdir()) == []

        # a file gone from a list in braces would be skipped by the engine without an error: it is one here
        held = [_write_rows(spill, f"stage.user-{p}", [money(p * 10)]) for p in (8, 9)]
        for rows in held:
            inserter.insert(rows)
        os.unlink(held[1][0][1])
        with pytest.raises(SinkError, match="gone before its insert"):
            inserter.flush()
        assert client.query(count).result_rows == [(70, 70)] and inserter.rows == 70
    finally:
        client.close()
