"""The postback ledger's two fact kinds: exact wire round trips and insert blocks whose columns are the tables'."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from attribution.outputs import Outputs, PostbackDecision, PostbackDelivery
from attribution.stages.facts import Fact, decode, encode, key_of
from sinks.rows import blocks, fact_blocks
from sinks.writer import ALL_TABLES, DERIVED_TABLES, POSTBACK_TABLES

MIGRATION = Path(__file__).parents[2] / "infra" / "clickhouse" / "0010_postbacks.sql"


def decision(**changes: Any) -> PostbackDecision:
    base = PostbackDecision(
        "ab" * 32, "oceanengine", "c1", "e1", "https://ad.example/cb?x=1&y=回传", "u1", "o1", "pay",
        Decimal("92.229"), 1_700_000_000_000_000, 1_700_000_600_000_000, "send", "every_pay",
    )  # fmt: skip
    return base._replace(**changes)


def delivery(**changes: Any) -> PostbackDelivery:
    return PostbackDelivery("ab" * 32, "sent", 2, "200 code=0 success", 1_700_000_601_000_000)._replace(**changes)


def test_both_kinds_round_trip_exactly() -> None:
    facts = [
        Fact("postback", 3, decision()),
        Fact("postback", 4, decision(amount=Decimal("0"), order_id="", kind="activate", active=False)),
        Fact("postback", 5, decision(amount=Decimal("-1.5E-30"), decision="superseded", platform="")),
        Fact("delivery", 6, delivery()),
        Fact("delivery", 7, delivery(status="failed", attempts=0, last_answer="", last_attempt_us=-1)),
    ]
    for fact in facts:
        back = decode(encode(fact))
        assert back == fact and type(back.row) is type(fact.row)
        if fact.kind == "postback":
            assert str(back.row.amount) == str(fact.row.amount)  # sign, digits and exponent
    assert key_of(facts[0]) == key_of(facts[1]) == ("ab" * 32,)
    assert key_of(facts[3]) == ("ab" * 32,)


def _columns(table: str) -> list[str]:
    sql = MIGRATION.read_text()
    body = re.search(rf"CREATE TABLE IF NOT EXISTS \{{db\}}\.{table} \((.*?)\) ENGINE", sql, re.S)
    assert body, table
    return [line.split()[0] for line in body.group(1).strip().splitlines()]


def test_blocks_have_the_migration_columns_and_the_greatest_version_per_key() -> None:
    facts = [
        Fact("postback", 9, decision(decision="superseded", active=False)),
        Fact("postback", 2, decision()),
        Fact("postback", 2, decision(key="k2", kind="activate")),
        Fact("delivery", 5, delivery(status="sending", attempts=1)),
        Fact("delivery", 8, delivery()),
    ]
    by_table = {b.table: b for b in fact_blocks(facts)}
    assert set(by_table) == {"postback_decisions", "postback_deliveries"}
    decisions, deliveries = by_table["postback_decisions"], by_table["postback_deliveries"]
    assert sorted(decisions.columns) == sorted(_columns("postback_decisions"))
    assert sorted(deliveries.columns) == sorted(_columns("postback_deliveries"))
    assert decisions.types[decisions.columns.index("conversion_ts")] == "DateTime64(6, 'UTC')"
    assert dict(zip(decisions.data[0], decisions.data[-1], strict=True)) == {"ab" * 32: 9, "k2": 2}
    assert decisions.data[decisions.columns.index("is_deleted")] == [1, 0]
    assert decisions.data[decisions.columns.index("amount")] == ["92.229", "92.229"]
    assert [deliveries.data[1], deliveries.data[-1]] == [["sent"], [8]]


def test_engine_outputs_never_carry_them_and_a_replay_leaves_them_alone() -> None:
    assert [b.table for b in blocks(Outputs())] == []
    for table in POSTBACK_TABLES:
        assert table not in DERIVED_TABLES and table not in ALL_TABLES
