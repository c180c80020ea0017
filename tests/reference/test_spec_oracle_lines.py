"""Tests of the reference oracle itself: how it validates lines (SPEC 2 and 4), and its speed."""

from __future__ import annotations

import json
import random
import time

import pytest

from .oracle_kit import click, fx, lines_of, payment, plan_cfg, redirect, refund, spend
from .spec_oracle import reference_reports

# ---------------------------------------------------------------------------
# SPEC 2 / 4: validation
# ---------------------------------------------------------------------------

GOOD_PAYMENT = payment("p", "2026-11-02T10:00:00+08:00", "o", "u", "1.50")


def _with(base, **changes):
    e = dict(base)
    for k, v in changes.items():
        if v is _DROP:
            e.pop(k, None)
        else:
            e[k] = v
    return json.dumps(e).encode()


_DROP = object()

VALIDATION_CASES = [
    # (line, expected reason or None for accepted)
    (b"\xff\xfe{}", "invalid_json"),
    (b"not json", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'"a string"', "invalid_json"),
    (b"\xef\xbb\xbf" + json.dumps(GOOD_PAYMENT).encode(), "invalid_json"),  # BOM
    (b'{"type":"payment","amount":NaN}', "invalid_json"),
    (_with(GOOD_PAYMENT, type="Payment"), "unknown_type"),
    (_with(GOOD_PAYMENT, type="bogus", amount=-1), "unknown_type"),  # unknown type wins
    (_with(GOOD_PAYMENT, type=_DROP), "invalid_field"),
    (_with(GOOD_PAYMENT, type=None), "invalid_field"),
    (_with(GOOD_PAYMENT, type=7), "invalid_field"),
    (_with(GOOD_PAYMENT), None),
    (_with(GOOD_PAYMENT, extra_field={"x": [1]}), None),
    (_with(GOOD_PAYMENT, schema_version=1), None),
    (_with(GOOD_PAYMENT, schema_version=None), None),
    (
        b'{"type":"payment","event_id":"p","ts":"2026-11-02T10:00:00+08:00","order_id":"o","user_id":"u",'
        b'"drama_id":"dr1","amount":"1.50","currency":"CNY","kind":"unlock","schema_version":1.0}',
        "invalid_field",
    ),
    (_with(GOOD_PAYMENT, schema_version="1"), "invalid_field"),
    (_with(GOOD_PAYMENT, schema_version=True), "invalid_field"),
    (_with(GOOD_PAYMENT, event_id=""), "invalid_field"),
    (_with(GOOD_PAYMENT, event_id="x" * 128), None),
    (_with(GOOD_PAYMENT, event_id="x" * 129), "invalid_field"),
    (_with(GOOD_PAYMENT, event_id=12), "invalid_field"),
    (_with(GOOD_PAYMENT, user_id=12), "invalid_field"),
    (_with(GOOD_PAYMENT, order_id=None), "invalid_field"),
    (_with(GOOD_PAYMENT, ts="2026-11-02T10:00:00"), "invalid_field"),
    (_with(GOOD_PAYMENT, ts="2026-11-02 10:00:00+08:00"), "invalid_field"),
    (_with(GOOD_PAYMENT, ts="2026-02-30T10:00:00Z"), "invalid_field"),
    (_with(GOOD_PAYMENT, ts="2026-11-02T24:00:00Z"), "invalid_field"),
    (_with(GOOD_PAYMENT, ts="2026-11-02T10:00:00+0800"), "invalid_field"),
    (_with(GOOD_PAYMENT, ts="2026-11-02T10:00:00.123456789Z"), None),
    (_with(GOOD_PAYMENT, ts="2026-11-02T10:00:00-05:00"), None),
    (_with(GOOD_PAYMENT, amount="12.50000"), None),
    (_with(GOOD_PAYMENT, amount="1.00001"), "invalid_field"),
    (_with(GOOD_PAYMENT, amount="-1"), "invalid_field"),
    (_with(GOOD_PAYMENT, amount=-1), "invalid_field"),
    (_with(GOOD_PAYMENT, amount="1e3"), "invalid_field"),
    (_with(GOOD_PAYMENT, amount=" 1"), "invalid_field"),
    (_with(GOOD_PAYMENT, amount="1,5"), "invalid_field"),
    (_with(GOOD_PAYMENT, amount=""), "invalid_field"),
    (_with(GOOD_PAYMENT, amount=True), "invalid_field"),
    (_with(GOOD_PAYMENT, amount=12), None),
    (
        b'{"type":"payment","event_id":"p","ts":"2026-11-02T10:00:00+08:00","order_id":"o","user_id":"u",'
        b'"drama_id":"dr1","amount":12.25,"currency":"CNY","kind":"unlock"}',
        None,
    ),
    (_with(GOOD_PAYMENT, amount="999999999999.9999"), None),
    (_with(GOOD_PAYMENT, amount="1000000000000"), "invalid_field"),
    (_with(GOOD_PAYMENT, currency="usd"), "invalid_field"),
    (_with(GOOD_PAYMENT, currency="CNYY"), "invalid_field"),
    (_with(GOOD_PAYMENT, kind="gift"), "invalid_field"),
    (_with(GOOD_PAYMENT, kind=_DROP), "invalid_field"),
    (json.dumps(click("c", "2026-11-02T10:00:00Z", "k", "d")).encode(), "invalid_field"),
    (json.dumps(click("c", "2026-11-02T10:00:00Z", "k", "d", campaign="a", plan="b")).encode(), "invalid_field"),
    (_with(click("c", "2026-11-02T10:00:00Z", "k", "d", campaign="a"), plan_id=None), None),
    (_with(redirect("r", "2026-11-02T10:00:00Z", "u"), host="web"), "invalid_field"),
    (_with(redirect("r", "2026-11-02T10:00:00Z", "u"), device_id=""), "invalid_field"),
    (json.dumps(fx("f", "2026-11-02T10:00:00Z", "USD", "0", "2026-11-01")).encode(), "invalid_field"),
    (json.dumps(fx("f", "2026-11-02T10:00:00Z", "USD", "7.123456789", "2026-11-01")).encode(), None),
    (json.dumps(fx("f", "2026-11-02T10:00:00Z", "USD", "7", "2026-11-1")).encode(), "invalid_field"),
    (json.dumps(plan_cfg("p", "2026-11-02T10:00:00Z", "pB", "cr", "1")).encode(), None),
    (json.dumps(plan_cfg("p", "2026-11-02T10:00:00Z", "pB", "cr", "1.0001")).encode(), "invalid_field"),
    (
        json.dumps(
            {
                "type": "campaign",
                "event_id": "c",
                "ts": "2026-11-02T10:00:00Z",
                "campaign_id": "cA",
                "platform": "weibo",
                "drama_id": "d",
                "buyer_id": "b",
            }
        ).encode(),
        "invalid_field",
    ),
    (
        json.dumps(
            {
                "type": "campaign",
                "event_id": "c",
                "ts": "2026-11-02T10:00:00Z",
                "campaign_id": "cA",
                "platform": "other",
                "drama_id": "d",
                "buyer_id": "b",
                "name": None,
            }
        ).encode(),
        None,
    ),
    (json.dumps(spend("s", "2026-11-02T10:00:00Z", "cA", "2026-11-02T10:00:00.000Z", "1")).encode(), None),
    (json.dumps(spend("s", "2026-11-02T10:00:00Z", "cA", "2026-11-02T10:00:00.5Z", "1")).encode(), "invalid_field"),
    (json.dumps(spend("s", "2026-11-02T10:00:00Z", "cA", "2026-11-02T10:00:00", "1")).encode(), "invalid_field"),
]


@pytest.mark.parametrize("line,reason", VALIDATION_CASES)
def test_validation(line, reason):
    r = reference_reports([line])
    if reason is None:
        assert r["rejects"]["rejected"] == {}
    else:
        assert r["rejects"]["rejected"] == {reason: 1}
    assert r["rejects"]["duplicates"] == 0


# ---------------------------------------------------------------------------
# Size
# ---------------------------------------------------------------------------


def test_twenty_thousand_events_in_a_few_seconds():
    rng = random.Random(1)
    events = [
        fx("fx", "2026-01-01T00:00:00Z", "USD", "7.1", "2026-01-01"),
        plan_cfg("pl", "2026-01-01T00:00:00Z", "p1", "cr1", "0.25"),
    ]
    base = 1_793_000_000  # around 2026-10
    for i in range(4000):
        t = base + rng.randrange(0, 30 * 86400)
        iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))  # noqa: E731
        dev = f"d{rng.randrange(300)}"
        src = {"campaign": f"c{rng.randrange(5)}"} if rng.random() < 0.7 else {"plan": "p1"}
        events.append(click(f"c{i}", iso(t), f"k{i}", dev, **src))
        events.append(
            redirect(f"r{i}", iso(t + 60), f"u{i}", click_id=f"k{i}" if rng.random() < 0.5 else None, device=dev)
        )
        cur = "USD" if rng.random() < 0.3 else "CNY"
        events.append(payment(f"p{i}", iso(t + 120), f"o{i}", f"u{i}", "6.00", cur))
        events.append(refund(f"f{i}", iso(t + 240), f"o{i}", "1.00", cur))
        events.append(spend(f"s{i}", iso(t), f"c{rng.randrange(5)}", iso(t - t % 3600), "12.5"))
    lines = lines_of(*events)
    start = time.perf_counter()
    r = reference_reports(lines)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, elapsed
    assert sum(row["new_users"] for row in r["roi"]) == 4000
    assert r["rejects"]["rejected"] == {}
