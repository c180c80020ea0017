"""The postback ledger tables in the embedded ClickHouse: per key the greatest version, decisions retractable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from attribution.outputs import PostbackDecision, PostbackDelivery
from attribution.stages.facts import Fact
from sinks.connection import command, connect
from sinks.schema import migrate
from sinks.writer import ClickHouseSink

pytestmark = pytest.mark.integration


@pytest.fixture
def sink(chdb_dir: Path) -> Iterator[ClickHouseSink]:
    client = connect(f"chdb://{chdb_dir}")
    db = f"p_{uuid.uuid4().hex}"
    migrate(client, db)
    yield ClickHouseSink(client, db)
    command(client, f"DROP DATABASE IF EXISTS {db} SYNC")


def test_decisions_and_deliveries_keep_the_greatest_version(sink: ClickHouseSink) -> None:
    sent = PostbackDecision(
        "k1",
        "tencent",
        "c1",
        "e1",
        "cb",
        "u1",
        "o1",
        "pay",
        Decimal("12.5"),
        1_000_000,
        601_000_000,
        "send",
        "every_pay",
    )
    sink.write_facts([Fact("postback", 4, sent._replace(decision="superseded")), Fact("postback", 3, sent)])
    sink.write_facts([Fact("postback", 2, sent._replace(key="k2", kind="activate", order_id="", amount=Decimal(0)))])
    sink.write_facts([Fact("delivery", 2, PostbackDelivery("k1", "sent", 2, "200 code=0 success", 602_000_000))])
    sink.write_facts([Fact("delivery", 1, PostbackDelivery("k1", "sending", 1, "", 601_500_000))])
    decisions = sink.client.query(
        f"SELECT key, decision, amount, toUnixTimestamp64Micro(decided_ts) FROM {sink.db}.postback_decisions FINAL "
        "ORDER BY key"
    ).result_rows
    assert [tuple(r) for r in decisions] == [
        ("k1", "superseded", Decimal("12.5"), 601_000_000),
        ("k2", "send", Decimal(0), 601_000_000),
    ]
    deliveries = sink.client.query(
        f"SELECT key, status, attempts, last_answer FROM {sink.db}.postback_deliveries FINAL"
    ).result_rows
    assert [tuple(r) for r in deliveries] == [("k1", "sent", 2, "200 code=0 success")]
