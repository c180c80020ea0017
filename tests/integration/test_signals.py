"""The business watcher on the SPEC worked example: signals from ClickHouse, gauges in the registry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sinks.connection import connect
from sinks.signals import read_signals
from streams.metrics import BUSINESS
from streams.watcher import WatchSettings, export

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[1] / "data" / "spec_example.jsonl"


def micros(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)


def test_signals_of_the_worked_example(store) -> None:  # type: ignore[no-untyped-def]
    store.replay_files(EXAMPLE)
    client = connect(store.dsn)
    # 01:00 on 11-02 (Shanghai): cA's 00:00 hour and u1's 00:10 redirect are in the trailing hour
    signals = read_signals(client, store.database, date(2026, 11, 2), micros("2026-11-02T01:00:00+08:00"), top=5)

    [ca] = signals.campaigns
    assert (ca.campaign_id, ca.platform) == ("cA", "douyin")
    assert (ca.spend_today, ca.revenue_d0_today, ca.new_users_today) == (Decimal(80), Decimal(30), 1)
    assert (ca.spend_1h, ca.new_users_1h) == (Decimal(80), 1)
    assert (signals.new_users_today, signals.organic_today) == (3, 1)
    assert signals.users_by_touch == {"click_id": 1, "device": 1, "organic": 1}
    assert signals.revenue == {
        ("douyin", "campaign"): Decimal(20),
        ("plan", "plan"): Decimal(71),
        ("organic", "organic"): Decimal("0.5"),
    }

    later = read_signals(client, store.database, date(2026, 11, 2), micros("2026-11-02T03:00:00+08:00"), top=5)
    assert (later.campaigns[0].spend_1h, later.campaigns[0].new_users_1h) == (Decimal(0), 0)  # a quiet hour
    assert read_signals(client, store.database, date(2026, 11, 2), 0, top=0).campaigns == []  # top bounds it

    export(signals, WatchSettings(roi_floor=0.5, floors={}), now=1234.0)
    value = BUSINESS.get_sample_value
    labels = {"campaign_id": "cA", "platform": "douyin"}
    assert value("reelroi_campaign_roi_d0_today", labels) == pytest.approx(0.375)
    assert value("reelroi_campaign_roi_floor", labels) == 0.5
    assert value("reelroi_campaign_redirects_1h", labels) == 1
    assert value("reelroi_organic_share") == pytest.approx(1 / 3)
    assert value("reelroi_revenue_attributed", {"platform": "plan", "source_kind": "plan"}) == 71
    assert value("reelroi_watcher_last_success_timestamp_seconds") == 1234.0
