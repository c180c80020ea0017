"""The facts codec: decode is the exact inverse of encode, and refuses everything else with ValueError."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, get_type_hints

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.outputs import LoggedEvent, MoneyFact, Rejection
from attribution.stages.facts import MAX_VERSION, ROWS, Fact, decode, encode, key_of

# any Unicode text ClickHouse can hold (a lone surrogate is not UTF-8), the empty string included
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
HUGE = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=120),
    st.integers(-(10**6), 10**6),
)
DECIMALS = st.one_of(st.decimals(allow_nan=False, allow_infinity=False), HUGE)
VALUES: dict[Any, st.SearchStrategy[Any]] = {
    str: TEXT,
    int: st.integers(-(2**63), 2**63 - 1),
    bool: st.booleans(),
    bytes: st.binary(max_size=64),  # not UTF-8, mostly
    dt.date: st.dates(),
    Decimal: DECIMALS,
}


def rows_of(kind: str) -> st.SearchStrategy[Any]:
    row = ROWS[kind]
    hints = get_type_hints(row)
    return st.builds(row, *[VALUES[hints[name]] for name in row._fields])  # type: ignore[attr-defined]


FACTS = st.sampled_from(sorted(ROWS)).flatmap(
    lambda kind: st.builds(Fact, st.just(kind), st.integers(0, MAX_VERSION), rows_of(kind))
)


def exact(fact: Fact) -> tuple[Any, ...]:
    """The fact with every Decimal as its (sign, digits, exponent): ``==`` alone says 1E+3 == 1000."""
    return (fact.kind, fact.version, tuple(v.as_tuple() if isinstance(v, Decimal) else v for v in fact.row))


@settings(max_examples=600, derandomize=True)
@given(FACTS)
def test_decode_is_the_exact_inverse_of_encode(fact: Fact) -> None:
    line = encode(fact)
    assert b"\n" not in line  # one line of a batch
    back = decode(line)
    assert back == fact
    assert exact(back) == exact(fact)
    assert type(back.row) is type(fact.row)


@settings(max_examples=300, derandomize=True)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_value_error(line: bytes) -> None:
    try:
        decode(line)
    except ValueError:
        pass


@settings(max_examples=300, derandomize=True)
@given(FACTS, st.data())
def test_a_damaged_field_is_a_value_error_never_another_error(fact: Fact, data: st.DataObject) -> None:
    values = orjson.loads(encode(fact))
    at = data.draw(st.integers(0, len(values) - 1))
    values[at] = data.draw(st.one_of(st.none(), st.integers(), st.floats(), TEXT, st.lists(st.integers())))
    try:
        decode(json.dumps(values).encode())  # json: it writes integers past 64 bits too
    except ValueError:
        pass


def _money(**changes: Any) -> MoneyFact:
    base = MoneyFact(
        "p1", "payment", "u1", "o1", 1_700_000_000_000_000, dt.date(2026, 11, 1), "plan", "pl1", dt.date(2026, 11, 1),
        "USD", Decimal("12.99"), Decimal("7.1"), Decimal("92.229"), "c1", Decimal("9.2229"),
    )  # fmt: skip
    return base._replace(**changes)


def test_edge_values_round_trip_exactly() -> None:
    raw = b"\xff\xfe not utf-8 \x00\n\r"
    facts = [
        Fact("event", 0, LoggedEvent("", "", -(2**63), "", b"")),
        Fact("event", MAX_VERSION, LoggedEvent("e", "click", 2**63 - 1, "t:0:1", raw)),
        Fact("rejection", 3, Rejection("event:e", "no_fx_rate", "", "e", "payment", "t:1:2", b"", False)),
        Fact("money", 4, _money(amount=Decimal("1E+3"), value=Decimal("-0.000"), rate=Decimal("1" * 100 + "E-70"))),
        Fact("money", 5, _money(commission=Decimal("-1.5E-999999"), user_id="用户 ✓")),
    ]
    for fact in facts:
        back = decode(encode(fact))
        assert exact(back) == exact(fact)
    assert str(decode(encode(facts[3])).row.amount) == "1E+3"
    assert decode(encode(facts[1])).row.raw == raw


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"\xff",
        b"{}",
        b"[]",
        b'["money"]',
        b'["nope", 1]',
        b'["campaign", -1, "c", "p", "d", "b", "n"]',
        b'["campaign", 9223372036854775808, "c", "p", "d", "b", "n"]',
        b'["campaign", true, "c", "p", "d", "b", "n"]',
        b'["campaign", 1.0, "c", "p", "d", "b", "n"]',
        b'["campaign", 1, "c", "p", "d", "b"]',
        b'["campaign", 1, "c", "p", "d", "b", "n", "extra"]',
        b'["campaign", 1, "c", "p", "d", "b", 5]',
        b'["plan", 1, "p", "c", "d", "1_000"]',
        b'["plan", 1, "p", "c", "d", " 1"]',
        b'["plan", 1, "p", "c", "d", "NaN"]',
        b'["plan", 1, "p", "c", "d", "Infinity"]',
        b'["plan", 1, "p", "c", "d", "1e3"]',
        b'["plan", 1, "p", "c", "d", 1]',
        b'["fx", 1, "USD", "20261101", "7.1"]',
        b'["fx", 1, "USD", "2026-W01-1", "7.1"]',
        b'["fx", 1, "USD", "2026-02-30", "7.1"]',
        b'["event", 1, "e", "click", 0, "o", "not base64!"]',
        b'["event", 1, "e", "click", 0, "o", "QQ="]',
        b'["event", 1, "e", "click", true, "o", ""]',
        b'["duplicate", 1, "k", "event_id", "e", "o", 1]',
    ],
)
def test_malformed_lines_are_value_errors(line: bytes) -> None:
    with pytest.raises(ValueError):
        decode(line)


@pytest.mark.parametrize(
    "fact",
    [
        Fact("nope", 1, _money()),
        Fact("money", -1, _money()),
        Fact("money", MAX_VERSION + 1, _money()),
        Fact("money", True, _money()),
        Fact("user", 1, _money()),  # a row of another kind
        Fact("money", 1, _money(amount=Decimal("NaN"))),
        Fact("money", 1, _money(amount=1)),
        Fact("money", 1, _money(active=1)),
        Fact("money", 1, _money(ts_us=2**64)),
        Fact("money", 1, _money(user_id="\ud800")),
        Fact("event", 1, LoggedEvent("e", "click", 0, "o", "text, not bytes")),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_decode_could_not_give_back(fact: Fact) -> None:
    with pytest.raises(ValueError):
        encode(fact)


def test_keys_are_the_table_keys() -> None:
    assert key_of(Fact("money", 1, _money())) == ("u1", "p1")  # (user, event): a moved payment has one producer
    assert key_of(Fact("event", 1, LoggedEvent("e", "click", 0, "o", b""))) == ("e",)
    assert key_of(Fact("rejection", 1, Rejection("event:e", "r", "", "e", "t", "o", b""))) == ("event:e",)
