"""Hostile input for the fuzz suite: hypothesis strategies and a hand-picked corpus.

Lines are built as JSON *text*, not from Python values, so that they can hold
what a serializer would never write: number texts of any size or exponent,
lone-surrogate escapes, duplicated keys, deep nesting, control characters.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

TEMPLATES: dict[str, dict[str, str]] = {
    "payment": {
        "order_id": '"o1"', "user_id": '"u1"', "drama_id": '"d1"', "amount": '"30.00"', "currency": '"CNY"',
        "kind": '"unlock"',
    },
    "refund": {"order_id": '"o1"', "amount": '"10"', "currency": '"CNY"'},
    "ad_unlock": {"user_id": '"u1"', "drama_id": '"d1"', "revenue": "0.5", "currency": '"CNY"'},
    "ad_spend": {
        "campaign_id": '"c1"', "period_start": '"2026-11-02T00:00:00+08:00"', "amount": "100", "currency": '"CNY"',
    },
    "click": {"click_id": '"k1"', "device_id": '"d1"', "campaign_id": '"c1"', "callback": '"cb"'},
    "impression": {"campaign_id": '"c1"', "device_id": '"d1"'},
    "redirect": {"user_id": '"u1"', "app_id": '"wx1"', "host": '"wechat"', "click_id": '"k1"'},
    "campaign": {"campaign_id": '"c1"', "platform": '"douyin"', "drama_id": '"d1"', "buyer_id": '"b1"'},
    "promotion_plan": {"plan_id": '"p1"', "creator_id": '"cr1"', "drama_id": '"d1"', "commission_rate": '"0.3"'},
    "fx_rate": {"currency": '"USD"', "rate": "7.1", "effective_date": '"2026-11-01"'},
}  # fmt: skip
COMMON = {"event_id": '"e1"', "ts": '"2026-11-02T00:20:00+08:00"'}


def obj(pairs: list[tuple[str, str]]) -> bytes:
    """A JSON object from (key, value-as-JSON-text) pairs, keys repeated if given twice."""
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}").encode("utf-8", "surrogatepass")


def event(kind: str, **overrides: str) -> bytes:
    """A valid event of ``kind`` with some fields replaced by JSON texts (``None`` drops one)."""
    fields = {"type": json.dumps(kind), **COMMON, **TEMPLATES[kind]}
    for key, value in overrides.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return obj(list(fields.items()))


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


# ------------------------------------------------------------------ strategies

digits = st.text("0123456789", min_size=1, max_size=30) | st.integers(1, 6000).map(lambda n: "7" * n)
exponents = st.sampled_from(
    ["", "e0", "e-3", "E+2", "e12", "e400", "e-1000027", "e-2000000000", "e-999999999999999999"]
)
json_numbers = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole.lstrip('0') or '0'}{frac}{exp}",
    st.sampled_from(["", "-"]),
    digits,
    st.sampled_from(["", ".0", ".5", ".50000", ".1234", ".12345", ".00001"]) | digits.map(lambda d: "." + d),
    exponents,
)
strings = st.text(max_size=40).map(lambda s: json.dumps(s, ensure_ascii=False)) | st.sampled_from(
    ['""', '"\\ud800"', '"\\udc00x"', '"\\u0000"', '"\\u001b[31mred"', '"' + "x" * 129 + '"', '"12.50"', '"-1"',
     '"1e5"', '" 1"', '"usd"', '"CNY"', '"1.00001"', '"12.50000"', '"0.3"', '"douyin"', '"unlock"', '"wechat"']
)  # fmt: skip
timestamps = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f'"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{off}"',
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".5", ".123456", ".1234567890123"]),
    st.sampled_from(["Z", "z", "", "+08:00", "-05:30", "+08:60", "+08:99", "+24:00", "+23:59", "-00:00", "+0800"]),
)
values = st.one_of(
    st.sampled_from(["null", "true", "false", "[]", "{}", "[1]", '{"a":1}', nested(70), nested(30)]),
    json_numbers,
    strings,
    timestamps,
)
kinds = st.sampled_from(sorted(TEMPLATES))
field_names = st.sampled_from(
    ["type", "event_id", "ts", "schema_version", "amount", "revenue", "rate", "commission_rate", "currency",
     "campaign_id", "plan_id", "click_id", "device_id", "user_id", "order_id", "period_start", "effective_date",
     "kind", "host", "platform", "extra"]
)  # fmt: skip


@st.composite
def hostile_events(draw: st.DrawFn) -> bytes:
    """A valid event of some type with a few fields replaced, dropped, repeated or added."""
    kind = draw(kinds)
    pairs = [("type", json.dumps(kind)), *COMMON.items(), *TEMPLATES[kind].items()]
    for _ in range(draw(st.integers(1, 4))):
        name, value = draw(field_names), draw(values)
        action = draw(st.sampled_from(["replace", "append", "drop"]))
        if action == "replace":
            pairs = [(k, value if k == name else v) for k, v in pairs]
        elif action == "append":  # a duplicated key: the last one counts
            pairs.append((name, value))
        else:
            pairs = [(k, v) for k, v in pairs if k != name]
    return obj(pairs)


garbage = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"{\"type\":\"payment\"", b"[]", b"5", b"NaN",
                     b"{\"type\": Infinity}", b"\x00", b"\x0c", b"\"\\ud800\"", nested(1100).encode()]),
)  # fmt: skip
hostile_lines = hostile_events() | garbage | values.map(str.encode)


# ------------------------------------------------------------------ corpus: (line, SPEC reason or "ok")

CORPUS: list[tuple[str, bytes, str]] = [
    ("money 1e-2000000000", event("payment", amount="1e-2000000000"), "invalid_field"),
    ("money 1e-999999999999999999", event("payment", amount="1e-999999999999999999"), "invalid_field"),
    ("money 1e-1000027", event("payment", amount="1e-1000027"), "invalid_field"),
    ("money 1e400", event("payment", amount="1e400"), "invalid_field"),
    ("money 5000-digit integer", event("payment", amount="9" * 5000), "invalid_field"),
    ("money 20-digit integer", event("payment", amount="1" * 20), "invalid_field"),
    ("money 12.50000 string", event("payment", amount='"12.50000"'), "ok"),
    ("money 12.50000 number", event("payment", amount="12.50000"), "ok"),
    ("money 1.00001", event("payment", amount='"1.00001"'), "invalid_field"),
    ("money 5000 zeros then 1", event("payment", amount='"1.' + "0" * 5000 + '1"'), "invalid_field"),
    ("money 1.2345e3", event("payment", amount="1.2345e3"), "ok"),
    ("money 0e99999999999999999999", event("payment", amount="0e99999999999999999999"), "ok"),
    ("money below 10^12", event("payment", amount="999999999999.9999"), "ok"),
    ("money 10^12", event("payment", amount="1e12"), "invalid_field"),
    ("money negative", event("payment", amount="-1"), "invalid_field"),
    ("money NaN", event("payment", amount="NaN"), "invalid_json"),
    ("money bool", event("payment", amount="true"), "invalid_field"),
    ("rate tiny", event("fx_rate", rate="1e-1000027"), "ok"),
    ("rate 5000 fraction digits", event("fx_rate", rate='"0.' + "3" * 5000 + '"'), "ok"),
    ("rate 1e400", event("fx_rate", rate="1e400"), "invalid_field"),
    ("commission_rate above 1", event("promotion_plan", commission_rate="1.0000001"), "invalid_field"),
    ("schema_version 10^30", event("click", schema_version="1" + "0" * 30), "ok"),
    ("schema_version 5000 digits", event("click", schema_version="7" * 5000), "ok"),
    ("schema_version 1.0", event("click", schema_version="1.0"), "invalid_field"),
    ("schema_version 1e2", event("click", schema_version="1e2"), "invalid_field"),
    ("schema_version string", event("click", schema_version='"1"'), "invalid_field"),
    ("schema_version null", event("click", schema_version="null"), "ok"),
    ("offset +08:60", event("click", ts='"2026-11-01T08:00:00+08:60"'), "invalid_field"),
    ("offset +08:99", event("click", ts='"2026-11-01T08:00:00+08:99"'), "invalid_field"),
    ("offset +24:00", event("click", ts='"2026-11-01T08:00:00+24:00"'), "invalid_field"),
    ("offset +23:59", event("click", ts='"2026-11-01T08:00:00+23:59"'), "ok"),
    ("no offset", event("click", ts='"2026-11-01T08:00:00"'), "invalid_field"),
    ("hour 24", event("click", ts='"2026-11-01T24:00:00Z"'), "invalid_field"),
    ("second 60", event("click", ts='"2026-11-01T23:59:60Z"'), "invalid_field"),
    ("lower-case t and z", event("click", ts='"2026-11-01t08:00:00.1234567z"'), "ok"),
    ("year 0000", event("click", ts='"0000-01-01T00:00:00Z"'), "invalid_field"),
    ("period_start not hour-aligned", event("ad_spend", period_start='"2026-11-02T00:30:00+08:00"'), "invalid_field"),
    ("nested 64 in an extra field", event("click", extra=nested(63)), "ok"),
    ("nested 65", event("click", extra=nested(64)), "invalid_json"),
    ("nested 1100 with 19 digits", event("payment", extra=nested(1100, '"1234567890123456789"')), "invalid_json"),
    ("nested 1100, digits in a string", obj([("x", nested(1100, '"12345678901234567890"'))]), "invalid_json"),
    ("brackets inside strings are not nesting", event("click", extra=json.dumps("[" * 200)), "ok"),
    ("lone surrogate in an extra field", event("click", extra='"\\ud800"'), "invalid_json"),
    ("escaped surrogate pair", event("click", extra='"\\ud83d\\ude00"'), "ok"),
    ("invalid UTF-8", event("click")[:-2] + b',"x":"\xff"}', "invalid_json"),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + event("click"), "invalid_json"),
    ("UTF-16", event("click").decode().encode("utf-16"), "invalid_json"),
    ("JSON array", b"[" + event("click") + b"]", "invalid_json"),
    ("JSON string", b'"click"', "invalid_json"),
    ("form feed", b"\x0c", "invalid_json"),
    ("NUL", b"\x00", "invalid_json"),
    ("type as array", b'{"type":["click"]}', "invalid_field"),
    ("type null", event("click", type="null"), "invalid_field"),
    ("type missing", event("click", type=None), "invalid_field"),
    ("unknown type wins over bad fields", b'{"type":"Payment","amount":-1}', "unknown_type"),
    ("event_id 129 chars", event("click", event_id='"' + "e" * 129 + '"'), "invalid_field"),
    ("event_id 128 chars", event("click", event_id='"' + "e" * 128 + '"'), "ok"),
    ("event_id number", event("click", event_id="5"), "invalid_field"),
    ("event_id empty", event("click", event_id='""'), "invalid_field"),
    ("click with both sources", event("click", plan_id='"p1"'), "invalid_field"),
    ("click with no source", event("click", campaign_id=None), "invalid_field"),
    ("currency lower case", event("payment", currency='"usd"'), "invalid_field"),
    ("ANSI escapes in ids", event("click", click_id='"\\u001b[2J\\u001b[31mboom"'), "ok"),
]
CORPUS += [
    (
        "duplicated key, last counts",
        obj([("type", '"payment"'), *COMMON.items(), *TEMPLATES["payment"].items(), ("amount", '"-5"'),
             ("amount", '"5"')]),
        "ok",
    ),
    (
        "duplicated key, last is bad",
        obj([("type", '"payment"'), *COMMON.items(), *TEMPLATES["payment"].items(), ("amount", '"-5"')]),
        "invalid_field",
    ),
]  # fmt: skip
