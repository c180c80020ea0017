"""The postback ledger's readers on the embedded ClickHouse (sinks/postbacks.py, tests/postback_ledger.py).

The list joins each decision to its delivery by key (greatest versions, retracted
decisions left out) and shows one status; the summary sets the true activations
and pays of each campaign, the ROI report's own counts, beside what was decided,
sent, held back by which part of the rule, superseded and failed.
"""

from __future__ import annotations

import csv
import io
import json
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
def ledger(chdb_dir: Path) -> Iterator[tuple[Any, str]]:
    client = connect(f"chdb://{chdb_dir}")
    db = f"pl_{uuid.uuid4().hex}"
    migrate(client, db)
    replay(ClickHouseSink(client, db), Policy(), [world.kit.records(world.events())])
    world.write_ledger(client, db)
    yield client, db
    command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def statuses(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    return {(r["campaign_id"], r["kind"], r["order_id"] or r["user_id"]): r["status"] for r in rows}


def test_every_decision_shows_one_status_from_its_delivery(ledger: tuple[Any, str]) -> None:
    rows = ledger_rows(*ledger, LedgerFilter())
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
def test_the_status_filter_matches_the_status_shown(ledger: tuple[Any, str], status: str) -> None:
    everything = ledger_rows(*ledger, LedgerFilter())
    rows = ledger_rows(*ledger, LedgerFilter(status=status))
    assert [r["key"] for r in rows] == [r["key"] for r in everything if r["status"] == status]
    assert rows  # every status occurs in the world


def test_filters_combine_and_a_buyer_sees_only_its_campaigns(ledger: tuple[Any, str]) -> None:
    assert {r["campaign_id"] for r in ledger_rows(*ledger, LedgerFilter(buyer_id="bA"))} == {"cA1", "cA2"}
    assert {r["campaign_id"] for r in ledger_rows(*ledger, LedgerFilter(buyer_id="bB"))} == {"cB1"}
    assert ledger_rows(*ledger, LedgerFilter(buyer_id="bB", campaign_id="cA1")) == []
    assert ledger_rows(*ledger, LedgerFilter(buyer_id="nobody")) == []
    pays = ledger_rows(*ledger, LedgerFilter(campaign_id="cA1", kind="pay"))
    assert sorted(r["order_id"] for r in pays) == ["o1", "o2", "o3"]
    assert sorted(r["order_id"] for r in ledger_rows(*ledger, LedgerFilter(kind="pay", status="sent"))) == ["o1", "o4"]
    assert {r["kind"] for r in ledger_rows(*ledger, LedgerFilter(since_us=world.PAID))} == {"pay"}
    assert len(ledger_rows(*ledger, LedgerFilter(), limit=3)) == 3
    assert ledger_rows(*ledger, LedgerFilter(campaign_id="cA1' OR '1'='1")) == []


def test_summary_counts_true_conversions_against_the_ledger(ledger: tuple[Any, str]) -> None:
    rows = {r["campaign_id"]: summary_shown(r) for r in summary_rows(*ledger)}
    for campaign, want in world.EXPECTED.items():
        assert {k: rows[campaign][k] for k in want} == want, campaign
    assert set(rows) == set(world.EXPECTED)
    assert rows["cA1"]["buyer_id"] == "bA" and rows["cA1"]["platform"] == "douyin"


def test_true_figures_are_the_roi_reports(ledger: tuple[Any, str]) -> None:
    roi = {r["source_id"]: r for r in roi_grouped(*ledger, RoiFilter(source_kind="campaign"), "campaign")}
    for row in summary_rows(*ledger):
        assert row["activations"] == roi[row["campaign_id"]]["new_users"]
        assert row["pay_value"] == roi[row["campaign_id"]]["revenue_iap"]


def test_summary_is_scoped_by_buyer_campaign_and_time(ledger: tuple[Any, str]) -> None:
    assert [r["campaign_id"] for r in summary_rows(*ledger, buyer_id="bA")] == ["cA1", "cA2"]
    assert [r["campaign_id"] for r in summary_rows(*ledger, buyer_id="bB")] == ["cB1"]
    assert summary_rows(*ledger, buyer_id="bB", campaign_id="cA1") == []
    (only,) = summary_rows(*ledger, campaign_id="cA2")
    assert only["failed"] == 1 and only["activations"] == 2
    later = {r["campaign_id"]: r for r in summary_rows(*ledger, since_us=world.PAID)}
    assert later["cA1"]["activations"] == 0 and later["cA1"]["pays"] == 3 and later["cA1"]["sent_pays"] == 1
    assert later["cA1"]["sent_activations"] == 0 and later["cA1"]["pending"] == 0


# ---------------------------------------------------------------- reelroi postbacks


def cli_world(store: Any) -> Any:
    """conftest's ``store`` (the CLI on a database of its own) with the world and its ledger."""
    store.replay(world.events())
    client = connect(store.dsn)
    try:
        world.write_ledger(client, store.database)
    finally:
        client.close()
    return store


def postbacks(store: Any, *args: str) -> tuple[str, str]:
    code, out, err = store.run("postbacks", "--db", store.dsn, *args)
    assert code == 0, f"reelroi postbacks {args} exited {code}\nstdout: {out}\nstderr: {err}"
    return out, err


def test_cli_lists_the_ledger_and_the_summary_as_the_api_rows(store: Any) -> None:
    cli_world(store)
    out, err = postbacks(store, "--format", "json")
    rows = json.loads(out)
    assert len(rows) == 12 and "Postback ledger" in err and "as of 2026-11-02T10:00:00+08:00" in err
    first = next(r for r in rows if r["key"] == world.key("cA1", "pay", "o1"))
    assert first["amount"] == "30.00" and first["status"] == "sent" and first["attempts"] == 3
    assert first["conversion_at"] == "2026-11-02T10:00:00+08:00" and first["decided_at"] == "2026-11-02T10:10:00+08:00"
    out, _ = postbacks(store, "--summary", "--format", "json")
    summary = {r["campaign_id"]: r for r in json.loads(out)}
    for campaign, want in world.EXPECTED.items():
        assert {k: summary[campaign][k] for k in want} == want, campaign
    out, _ = postbacks(store, "--status", "held_ratio", "--format", "json")
    assert sorted(r["order_id"] for r in json.loads(out)) == ["o2", "o6"]
    out, _ = postbacks(
        store, "--campaign", "cA1", "--kind", "pay", "--since", "2026-11-02T10:00:00+08:00", "--format", "json"
    )
    assert sorted(r["order_id"] for r in json.loads(out)) == ["o1", "o2", "o3"]
    out, _ = postbacks(store, "--since", "2026-11-03", "--format", "json")
    assert json.loads(out) == []
    out, _ = postbacks(store, "--summary", "--campaign", "cB1", "--since", "2026-11-02", "--format", "json")
    assert [r["campaign_id"] for r in json.loads(out)] == ["cB1"]


def test_cli_table_and_csv_are_escaped_for_where_they_go(store: Any) -> None:
    cli_world(store)
    out, _ = postbacks(store)
    assert "\x1b" not in out and "invalid callback \\x1b[31m" in out  # the platform's answer, shown harmless
    assert out.startswith("Postback ledger, latest decided first · amounts in CNY")
    assert world.key("cA1", "pay", "o1") not in out  # long ids only in JSON and CSV
    out, _ = postbacks(store, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert {r["name"] for r in parsed if r["campaign_id"] == "cA2"} == {'\'=HYPERLINK("x")'}
    assert parsed[0]["currency"] == "CNY" and parsed[0]["key"]
    out, _ = postbacks(store, "--summary", "--out", str(store.workdir / "s.txt"))
    lines = (store.workdir / "s.txt").read_text().splitlines()
    assert lines[0].startswith("Postbacks reported vs true, by campaign · amounts in CNY")
    cells = dict(zip(lines[1].split(), next(ln for ln in lines if ln.startswith("cB1")).split(), strict=True))
    assert cells == {
        k: str(v)
        for k, v in {
            "campaign_id": "cB1",
            "name": "B1",
            "platform": "kuaishou",
            "buyer_id": "bB",
            **world.EXPECTED["cB1"],
        }.items()
    }


def test_cli_refuses_what_it_cannot_answer(store: Any) -> None:
    cli_world(store)
    for args in (("--summary", "--status", "sent"), ("--since", "yesterday"), ("--limit", "-1")):
        code, _, err = store.run("postbacks", "--db", store.dsn, *args)
        assert code == 2 and "reelroi postbacks: error:" in err, args
    with pytest.raises(SystemExit) as exit_:
        store.run("postbacks", "--db", store.dsn, "--status", "lost")
    assert exit_.value.code == 2


def test_the_command_offers_what_the_ledger_shows() -> None:
    from reelroi import postbacks_cli
    from sinks import postbacks as readers

    assert (postbacks_cli.STATUSES, postbacks_cli.KINDS) == (readers.STATUSES, readers.KINDS)
