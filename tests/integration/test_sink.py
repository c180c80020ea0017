"""The ClickHouse sink on the embedded engine: migrations, idempotent writes, re-attribution."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from attribution import testing as kit
from attribution.engine import Engine
from attribution.errors import FatalSinkError
from attribution.policy import Policy
from reelroi.formatting import roi_report
from sinks.connection import connect
from sinks.reports import rejection_counts, roi_rows
from sinks.schema import migrate, migrations
from sinks.writer import ClickHouseSink

pytestmark = pytest.mark.integration


@pytest.fixture
def sink(chdb_dir: Path) -> ClickHouseSink:
    client = connect(f"chdb://{chdb_dir}")
    db = f"s_{uuid.uuid4().hex}"
    migrate(client, db)
    return ClickHouseSink(client, db)


SCENARIO = [
    kit.fx(currency="USD", rate="7.1", effective_date="2026-11-01"),
    kit.plan(commission_rate="0.3"),
    kit.spend(amount="80"),
    kit.click(ts="2026-11-02T09:00:00+08:00", click_id="k1", device_id="d1", campaign_id="cA"),
    kit.redirect(ts="2026-11-02T09:05:00+08:00", user_id="u1", click_id="k1"),
    kit.payment(ts="2026-11-02T09:10:00+08:00", user_id="u1", order_id="o1", amount="30"),
    kit.click(ts="2026-11-02T09:00:00+08:00", click_id="k2", device_id="d2", plan_id="pB"),
    kit.redirect(ts="2026-11-02T09:05:00+08:00", user_id="u2", device_id="d2"),
    kit.payment(ts="2026-11-02T09:30:00+08:00", user_id="u2", order_id="o2", amount="10", currency="USD"),
    kit.refund(ts="2026-11-03T09:30:00+08:00", order_id="o2", amount="4", currency="USD"),
    b"garbage",
]


def report(sink: ClickHouseSink) -> list[dict[str, object]]:
    return roi_report(roi_rows(sink.client, sink.db))


def test_migrations_are_versioned_and_idempotent(sink: ClickHouseSink) -> None:
    versions = [v for v, _, _ in migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    assert migrate(sink.client, sink.db) == []  # already applied: nothing to do
    applied = sink.client.query(f"SELECT version FROM {sink.db}.schema_migrations ORDER BY version").result_rows
    assert [v for (v,) in applied] == versions


def test_resending_a_batch_never_double_counts(sink: ClickHouseSink) -> None:
    out = Engine(Policy()).process(kit.records(SCENARIO))
    sink.write(out)
    once = report(sink)
    counts = rejection_counts(sink.client, sink.db)
    sink.write(out)  # a retry after a failure that happened after the insert
    sink.write(out)
    assert report(sink) == once
    assert rejection_counts(sink.client, sink.db) == counts == {"rejected": {"invalid_json": 1}, "duplicates": 0}
    plan_row = next(r for r in once if r["source_kind"] == "plan")
    assert (plan_row["revenue_total"], plan_row["commission"], plan_row["refunds"]) == ("42.60", "12.78", "28.40")


def test_corrections_from_later_batches_replace_earlier_rows(sink: ClickHouseSink) -> None:
    engine = Engine(Policy())
    sink.write(
        engine.process(
            kit.records([kit.redirect(ts="2026-11-02T10:00:00+08:00", device_id="d9"), kit.payment(order_id="o1")])
        )
    )
    assert [(r["source_kind"], r["revenue_total"]) for r in report(sink)] == [("organic", "30.00")]
    late_click = kit.click(ts="2026-11-02T09:00:00+08:00", device_id="d9", campaign_id="cLate")
    earlier_payment = kit.payment(ts="2026-11-02T09:59:00+08:00", order_id="o1", amount="12")
    sink.write(engine.process(kit.records([late_click, earlier_payment], prefix="b2")))
    rows = report(sink)
    assert [(r["source_kind"], r["source_id"], r["revenue_total"]) for r in rows] == [("campaign", "cLate", "12.00")]
    assert rejection_counts(sink.client, sink.db)["duplicates"] == 1  # the later payment of o1


def test_reattribute_with_a_shorter_window_equals_a_replay_with_it(sink: ClickHouseSink, chdb_dir: Path) -> None:
    from reelroi.replay import reattribute, replay

    lines = [
        kit.click(ts="2026-11-01T09:00:00+08:00", click_id="k1", campaign_id="cA"),
        kit.redirect(ts="2026-11-02T10:00:00+08:00", user_id="u1", click_id="k1"),
        kit.payment(user_id="u1", order_id="o1"),
        kit.payment(user_id="u1", order_id="o1x", currency="EUR"),
        b"{bad",
        kit.payment(user_id="u1", order_id="o1"),
    ]
    replay(sink, Policy(), [kit.records(lines)])
    assert [r["source_kind"] for r in report(sink)] == ["campaign"]
    before = rejection_counts(sink.client, sink.db)
    reattribute(sink, Policy(click_window_s=3600))
    after = report(sink)
    assert [r["source_kind"] for r in after] == ["organic"]
    assert rejection_counts(sink.client, sink.db) == before

    fresh = ClickHouseSink(connect(f"chdb://{chdb_dir}"), sink.db + "_fresh")
    migrate(fresh.client, fresh.db)
    replay(fresh, Policy(click_window_s=3600), [kit.records(lines)])
    assert report(fresh) == after


def test_a_broken_insert_raises_a_typed_sink_error(sink: ClickHouseSink) -> None:
    sink.client.command(f"DROP TABLE {sink.db}.money")
    out = Engine(Policy()).process(kit.records([kit.payment(order_id="o1")]))
    with pytest.raises(FatalSinkError) as info:
        sink.write(out)
    assert "money" in str(info.value) and info.value.code is not None


def test_instants_round_trip_and_each_campaign_hour_is_its_own_row(sink: ClickHouseSink) -> None:
    from datetime import UTC, datetime

    lines = [
        kit.spend(period_start="2026-11-02T00:00:00+08:00", amount="10"),
        kit.spend(period_start="2026-11-02T01:00:00+08:00", amount="20"),
        kit.redirect(ts="2026-11-02T09:05:00.123456+08:00"),
    ]
    sink.write(Engine(Policy()).process(kit.records(lines)))
    starts = sink.client.query(f"SELECT period_start FROM {sink.db}.spend FINAL ORDER BY period_start").result_rows
    assert [s.replace(tzinfo=UTC) for (s,) in starts] == [
        datetime(2026, 11, 1, 16, tzinfo=UTC),
        datetime(2026, 11, 1, 17, tzinfo=UTC),
    ]
    (acquired,) = sink.client.query(f"SELECT acquired FROM {sink.db}.users FINAL").result_rows[0]
    assert acquired.replace(tzinfo=UTC) == datetime(2026, 11, 2, 1, 5, 0, 123456, tzinfo=UTC)
    assert report(sink)[0]["spend"] == "30.00"
