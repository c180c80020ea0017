"""``reelroi replay`` and ``reattribute`` in bounded pieces (reelroi/replay_passes.py), in worker processes.

Small buckets (``REELROI_REPLAY_BUCKET_EVENTS``) and small batches force many
buckets, spawned workers and several pass-0 batches on a small world; the
reports must equal the independent oracle's, a failure must leave no spill
file and the live tables as they were, and a reattribute must equal a replay
under the same policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
