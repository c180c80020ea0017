"""Row mapping for the ClickHouse sink: pure, no server."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal, localcontext

from attribution import testing as kit
from attribution.engine import Engine
from attribution.policy import Policy
from sinks.rows import blocks, day, dec


def test_decimals_travel_as_plain_text_within_the_column_scale() -> None:
    assert dec(Decimal("1E+3")) == "1000"
    assert dec(Decimal("-0")) == "-0"
    assert dec(Decimal("12.50")) == "12.50"
    long = Decimal("7123456789012.3449665555556657654321098765433")
    assert dec(long) == "7123456789012.344966555555665765432109876543"
    assert dec(Decimal("0." + "1" * 40)) == "0." + "1" * 30


def test_decimal_text_is_the_fixed_point_format_of_every_decimal() -> None:
    rng = random.Random(3)
    for _ in range(20_000):
        value = Decimal(f"{rng.choice('-+')}{rng.randint(0, 10 ** rng.randint(1, 40))}E{rng.randint(-45, 12)}")
        if rng.random() < 0.3:
            value *= Decimal("7.1234")
        fixed = format(value, "f")
        if len(fixed) - fixed.find(".") > 31 and "." in fixed:
            continue  # beyond the column's scale: quantized, above
        assert dec(value) == fixed, value
    with localcontext(capitals=0):  # str() writes exponents in lower case then
        assert dec(Decimal("1E+3")) == "1000" and dec(Decimal("0E-35")) == "0." + "0" * 30


def test_dates_are_day_numbers() -> None:
    assert day(date(1970, 1, 2)) == 1
    assert day(date(1969, 12, 31)) == -1


def test_blocks_keep_the_last_row_per_key_and_mark_retractions() -> None:
    engine = Engine(Policy())
    out = engine.process(kit.records([kit.payment(event_id="p2", ts="2026-11-02T12:00:00+08:00", order_id="o")]))
    out.extend(
        engine.process(kit.records([kit.payment(event_id="p1", ts="2026-11-02T11:00:00+08:00", order_id="o")], "b"))
    )
    by_table = {b.table: b for b in blocks(out)}
    money = by_table["money"]
    rows = dict(zip(money.data[0], money.data[money.columns.index("is_deleted")], strict=True))
    assert rows == {"p1": 0, "p2": 1}
    assert len(by_table["events"]) == 2
    assert by_table["duplicates"].data[0] == ["order:p2"]  # the key column
