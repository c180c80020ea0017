"""The postback ledger's readers on the embedded ClickHouse (sinks/postbacks.py, tests/postback_ledger.py).

The list joins each decision to its delivery by key (greatest versions, retracted
decisions left out) and shows one status; the summary sets the true activations
and pays of each campaign, the ROI report's own counts, beside what was decided,
sent, held back by which part of the rule, superseded and failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attribution.policy import Policy
from reelroi.postbacks_view import summary_shown
from reelroi.replay import replay
from sinks.analytics import RoiFilter, roi_grouped
from sinks.connection import command, connect
from sinks.postbacks import STATUSES, LedgerFilter, ledger_rows, summary_rows
from sinks.schema import migrate
from sinks.writer import ClickHouseSink
from tests import postback_ledger as world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[tuple[Any, str]]:
    client = connect(f"chdb://{chdb_dir}")
    db = f"pl_{uuid.uuid4().hex}"
    migrate(client, db)
    replay(ClickHouseSink(client, db), Policy(), [world.kit.records(world.events())])
    world.write_ledger(client, db)
    yield client, db
    command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def statuses(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    return {(r["campaign_id"], r["kind"], r["order_id"] or r["user_id"]): r["status"] for r in rows}


def test_every_decision_shows_one_status_from_its_delivery(store: tuple[Any, str]) -> None:
    rows = ledger_rows(*store, LedgerFilter())
    assert statuses(rows) == {
        ("cA1", "activate", "u1"): "sent",
        ("cA1", "activate", "u2"): "sending",
        ("cA1", "activate", "u3"): "pending",
        ("cA1", "pay", "o1"): "sent",
        ("cA1", "pay", "o2"): "held_ratio",
        ("cA1", "pay", "o3"): "held_min_amount",
        ("cA2", "activate", "u4"): "failed",
        ("cA2", "activate", "u5"): "held_kind",
        ("cA2", "pay", "o4"): "sent",
        ("cA2", "activate", "u9"): "superseded",
        ("cB1", "activate", "u6"): "sent",
        ("cB1", "pay", "o6"): "held_ratio",
    }  # the retracted decision (o9) is in no row
    by_key = {r["key"]: r for r in rows}
    first = by_key[world.key("cA1", "activate", "u1")]
    assert (first["attempts"], first["last_answer"], first["delivery"]) == (1, "200 code=0 success", "sent")
    pending = by_key[world.key("cA1", "activate", "u3")]
    assert (pending["delivery"], pending["attempts"], pending["last_attempt_us"]) == ("", 0, None)
    superseded = by_key[world.key("cA2", "activate", "u9")]
    assert superseded["delivery"] == "sent"  # reached the platform before the user moved: never unsent
    assert by_key[world.key("cA1", "pay", "o2")]["detail"] == "ratio 0.5: not in the share"
    assert {r["buyer_id"] for r in rows} == {"bA", "bB"} and by_key[world.key("cA1", "pay", "o1")]["name"] == "春节 A1"
    assert [r["decided_us"] for r in rows] == sorted((r["decided_us"] for r in rows), reverse=True)


@pytest.mark.parametrize("status", STATUSES)
def test_the_status_filter_matches_the_status_shown(store: tuple[Any, str], status: str) -> None:
    everything = ledger_rows(*store, LedgerFilter())
    rows = ledger_rows(*store, LedgerFilter(status=status))
    assert [r["key"] for r in rows] == [r["key"] for r in everything if r["status"] == status]
    assert rows  # every status occurs in the world


def test_filters_combine_and_a_buyer_sees_only_its_campaigns(store: tuple[Any, str]) -> None:
    assert {r["campaign_id"] for r in ledger_rows(*store, LedgerFilter(buyer_id="bA"))} == {"cA1", "cA2"}
    assert {r["campaign_id"] for r in ledger_rows(*store, LedgerFilter(buyer_id="bB"))} == {"cB1"}
    assert ledger_rows(*store, LedgerFilter(buyer_id="bB", campaign_id="cA1")) == []
    assert ledger_rows(*store, LedgerFilter(buyer_id="nobody")) == []
    pays = ledger_rows(*store, LedgerFilter(campaign_id="cA1", kind="pay"))
    assert sorted(r["order_id"] for r in pays) == ["o1", "o2", "o3"]
    assert sorted(r["order_id"] for r in ledger_rows(*store, LedgerFilter(kind="pay", status="sent"))) == ["o1", "o4"]
    assert {r["kind"] for r in ledger_rows(*store, LedgerFilter(since_us=world.PAID))} == {"pay"}
    assert len(ledger_rows(*store, LedgerFilter(), limit=3)) == 3
    assert ledger_rows(*store, LedgerFilter(campaign_id="cA1' OR '1'='1")) == []


def test_summary_counts_true_conversions_against_the_ledger(store: tuple[Any, str]) -> None:
    rows = {r["campaign_id"]: summary_shown(r) for r in summary_rows(*store)}
    for campaign, want in world.EXPECTED.items():
        assert {k: rows[campaign][k] for k in want} == want, campaign
    assert set(rows) == set(world.EXPECTED)
    assert rows["cA1"]["buyer_id"] == "bA" and rows["cA1"]["platform"] == "douyin"


def test_true_figures_are_the_roi_reports(store: tuple[Any, str]) -> None:
    roi = {r["source_id"]: r for r in roi_grouped(*store, RoiFilter(source_kind="campaign"), "campaign")}
    for row in summary_rows(*store):
        assert row["activations"] == roi[row["campaign_id"]]["new_users"]
        assert row["pay_value"] == roi[row["campaign_id"]]["revenue_iap"]


def test_summary_is_scoped_by_buyer_campaign_and_time(store: tuple[Any, str]) -> None:
    assert [r["campaign_id"] for r in summary_rows(*store, buyer_id="bA")] == ["cA1", "cA2"]
    assert [r["campaign_id"] for r in summary_rows(*store, buyer_id="bB")] == ["cB1"]
    assert summary_rows(*store, buyer_id="bB", campaign_id="cA1") == []
    (only,) = summary_rows(*store, campaign_id="cA2")
    assert only["failed"] == 1 and only["activations"] == 2
    later = {r["campaign_id"]: r for r in summary_rows(*store, since_us=world.PAID)}
    assert later["cA1"]["activations"] == 0 and later["cA1"]["pays"] == 3 and later["cA1"]["sent_pays"] == 1
    assert later["cA1"]["sent_activations"] == 0 and later["cA1"]["pending"] == 0
