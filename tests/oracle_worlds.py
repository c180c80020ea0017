"""A tiny universe for hypothesis: few users, devices, clicks, campaigns and orders, so that the
random worlds collide on every rule of SPEC section 3 (shared by the oracle comparisons)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st

BASE = datetime(2026, 11, 2, tzinfo=timezone(timedelta(hours=8)))  # 2026-11-02T00:00:00+08:00
OFFSETS = (timezone(timedelta(hours=8)), UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)))
WHOLE_HOUR_OFFSETS = OFFSETS[:3]

USERS = ("u1", "u2", "u3")
DEVICES = ("d1", "d2", "d3")
CLICK_IDS = ("k1", "k2", "k3")
CAMPAIGNS = ("cA", "cB")
PLANS = ("pA", "pB")
ORDERS = ("o1", "o2", "o3")

# Minutes from BASE that make window ends and day ends coincide: both window
# lengths of every tested policy (7d, 24h, 1h, 30m), one minute either side,
# local midnights in Asia/Shanghai (multiples of 1440) and UTC (480 + k*1440),
# and the D1/D3/D7 ends.
_SPECIAL: set[int] = set()
for w in (0, 30, 60, 1440, 10080):
    for d in (-1, 0, 1):
        _SPECIAL |= {-w + d, w + d}
for day in (1, 2, 4, 8):
    for shift in (0, 480):
        _SPECIAL |= {day * 1440 + shift - 1, day * 1440 + shift, -day * 1440 + shift - 1, -day * 1440 + shift}
SPECIAL_MINUTES = tuple(sorted(_SPECIAL))

minutes = st.one_of(st.sampled_from(SPECIAL_MINUTES), st.integers(-10 * 1440, 10 * 1440))
money_values = st.sampled_from(
    ["30.00", "10", "0.01", "0", "12.3456", "9.90", "100", "0.0001", "7.5", 10, 2.5, 0.1, 12.3456, "19.99000"]
)
currencies = st.sampled_from(["CNY", "CNY", "USD"])
fx_rates = st.sampled_from(["7.1", "7.12345678", "6.9", 7, "0.1234567891234", 7.25])
commission_rates = st.sampled_from(["0.3", "0.25", "0", "1", "0.125", "0.3333333", 0.5])
fx_dates = st.sampled_from(["2026-10-20", "2026-10-30", "2026-11-01", "2026-11-02", "2026-11-05", "2026-11-10"])


def ts_text(minute: int, tz: timezone) -> str:
    t = (BASE + timedelta(minutes=minute)).astimezone(tz)
    text = t.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@st.composite
def timestamps(draw) -> str:
    return ts_text(draw(minutes), draw(st.sampled_from(OFFSETS)))


SPEND_HOURS = (-25, -24, -1, 0, 1, 7, 8, 16, 23, 24, 40, 200)  # hours from BASE


@st.composite
def hour_aligned(draw, hour: int | None = None) -> str:
    """An hour-aligned period_start; restatements of one hour may use another offset."""
    if hour is None:
        hour = draw(st.sampled_from(SPEND_HOURS))
    return ts_text(hour * 60, draw(st.sampled_from(WHOLE_HOUR_OFFSETS)))


MALFORMED = (
    b"not json at all",
    b"[1, 2, 3]",
    b'"a string"',
    b"\xff\xfe garbage",
    b'{"type":"install","event_id":"bad-u","ts":"2026-11-02T10:00:00+08:00"}',
    b'{"event_id":"bad-nt","ts":"2026-11-02T10:00:00+08:00","user_id":"u1"}',
    b'{"type":"payment","event_id":"bad-c","ts":"2026-11-02T10:00:00+08:00","order_id":"o1","user_id":"u1",'
    b'"drama_id":"dr1","amount":"1.00","currency":"usd","kind":"unlock"}',
    b'{"type":"payment","event_id":"bad-a","ts":"2026-11-02T10:00:00+08:00","order_id":"o2","user_id":"u2",'
    b'"drama_id":"dr1","amount":"1.00001","currency":"CNY","kind":"unlock"}',
    b'{"type":"payment","event_id":"bad-n","ts":"2026-11-02T10:00:00+08:00","order_id":"o3","user_id":null,'
    b'"drama_id":"dr1","amount":"1.00","currency":"CNY","kind":"unlock"}',
    b'{"type":"redirect","event_id":"bad-ts","ts":"2026-11-02T10:00:00","user_id":"u1","app_id":"wx1","host":"wechat"}',
    b'{"type":"click","event_id":"bad-both","ts":"2026-11-02T10:00:00+08:00","click_id":"k1","device_id":"d1",'
    b'"campaign_id":"cA","plan_id":"pA"}',
    b'{"type":"ad_spend","event_id":"bad-p","ts":"2026-11-02T10:00:00+08:00","campaign_id":"cA",'
    b'"period_start":"2026-11-02T10:30:00+08:00","amount":"5","currency":"CNY"}',
    b'{"type":"refund","event_id":"bad-r","ts":"2026-11-02T10:00:00+08:00","order_id":"o1","amount":"-1",'
    b'"currency":"CNY"}',
    b"",
    b"   \t",
)


def dump_event(ev: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in ev.items() if v is not None})


@st.composite
def event_sets(draw, multi_hour_spend: bool = False) -> list[bytes]:
    """A random small world. Without ``multi_hour_spend`` every campaign's ad_spend is for one
    hour (drawn per world; restated, in several offsets, sometimes rejected no_fx_rate); with it,
    spend hours vary and two hours of cA are always there."""
    n = draw(st.integers(0, 28))
    lines: list[bytes] = []
    one_hour = {c: draw(st.sampled_from(SPEND_HOURS)) for c in CAMPAIGNS}
    for i in range(n):
        eid = f"e{i}"  # "e10" < "e9": event_id order is not file order
        kind = draw(
            st.sampled_from(
                ["click", "click", "click", "impression", "redirect", "redirect", "redirect", "payment", "payment",
                 "payment", "refund", "refund", "ad_unlock", "ad_spend", "ad_spend", "fx_rate", "promotion_plan",
                 "campaign", "malformed"]
            )
        )  # fmt: skip
        ev: dict[str, Any] = {"type": kind, "event_id": eid, "ts": draw(timestamps())}
        if draw(st.integers(0, 9)) == 0:
            ev["schema_version"] = 1
        if draw(st.integers(0, 9)) == 0:
            ev["unknown_extra"] = {"x": [1, 2]}
        if kind == "malformed":
            lines.append(draw(st.sampled_from(MALFORMED)))
            continue
        if kind == "click":
            ev["click_id"] = draw(st.sampled_from(CLICK_IDS))
            ev["device_id"] = draw(st.sampled_from(DEVICES))
            if draw(st.booleans()):
                ev["campaign_id"] = draw(st.sampled_from(CAMPAIGNS))
            else:
                ev["plan_id"] = draw(st.sampled_from(PLANS))
        elif kind == "impression":
            ev["campaign_id"] = draw(st.sampled_from(CAMPAIGNS))
            ev["device_id"] = draw(st.sampled_from(DEVICES))
        elif kind == "redirect":
            ev["user_id"] = draw(st.sampled_from(USERS))
            ev["app_id"] = "wx1"
            ev["host"] = draw(st.sampled_from(["wechat", "douyin", "app"]))
            ev["click_id"] = draw(st.one_of(st.none(), st.sampled_from(CLICK_IDS)))
            ev["device_id"] = draw(st.one_of(st.none(), st.sampled_from(DEVICES)))
        elif kind == "payment":
            ev["order_id"] = draw(st.sampled_from(ORDERS))
            ev["user_id"] = draw(st.sampled_from(USERS))
            ev["drama_id"] = "dr1"
            ev["amount"] = draw(money_values)
            ev["currency"] = draw(currencies)
            ev["kind"] = draw(st.sampled_from(["unlock", "recharge", "subscription"]))
        elif kind == "refund":
            ev["order_id"] = draw(st.sampled_from((*ORDERS, "o9")))
            ev["amount"] = draw(money_values)
            ev["currency"] = draw(currencies)
        elif kind == "ad_unlock":
            ev["user_id"] = draw(st.sampled_from(USERS))
            ev["drama_id"] = "dr1"
            ev["revenue"] = draw(money_values)
            ev["currency"] = draw(currencies)
        elif kind == "ad_spend":
            ev["campaign_id"] = draw(st.sampled_from(CAMPAIGNS))
            ev["period_start"] = draw(hour_aligned(None if multi_hour_spend else one_hour[ev["campaign_id"]]))
            ev["amount"] = draw(money_values)
            ev["currency"] = draw(currencies)
        elif kind == "fx_rate":
            ev["currency"] = draw(st.sampled_from(["USD", "USD", "USD", "CNY"]))
            ev["rate"] = draw(fx_rates)
            ev["effective_date"] = draw(fx_dates)
        elif kind == "promotion_plan":
            ev["plan_id"] = draw(st.sampled_from(PLANS))
            ev["creator_id"] = draw(st.sampled_from(["cr1", "cr2"]))
            ev["drama_id"] = "dr1"
            ev["commission_rate"] = draw(commission_rates)
        elif kind == "campaign":
            ev["campaign_id"] = draw(st.sampled_from(CAMPAIGNS))
            ev["platform"] = "douyin"
            ev["drama_id"] = "dr1"
            ev["buyer_id"] = "b1"
        lines.append(dump_event(ev))
    # a USD rate, usually (sometimes it is missing: no_fx_rate)
    if draw(st.integers(0, 3)) > 0:
        lines.append(
            dump_event({"type": "fx_rate", "event_id": "fx0", "ts": "2026-10-01T00:00:00Z", "currency": "USD",
                   "rate": draw(fx_rates), "effective_date": "2026-10-01"})
        )  # fmt: skip
    # configured plans, usually
    for p in PLANS:
        if draw(st.integers(0, 3)) > 0:
            lines.append(
                dump_event({"type": "promotion_plan", "event_id": f"cfg-{p}", "ts": "2026-10-01T00:00:00Z", "plan_id": p,
                       "creator_id": "cr1", "drama_id": "dr1", "commission_rate": draw(commission_rates)})
            )  # fmt: skip
    if multi_hour_spend:
        for k, (hour, amount) in enumerate(((0, "100"), (1, "50"))):
            lines.append(
                dump_event({"type": "ad_spend", "event_id": f"anchor-{k}", "ts": ts_text(hour * 60 + 70, OFFSETS[0]),
                       "campaign_id": "cA", "period_start": ts_text(hour * 60, OFFSETS[0]), "amount": amount,
                       "currency": "CNY"})
            )  # fmt: skip
    # exact duplicate lines (producer retries)
    if lines:
        for _ in range(draw(st.integers(0, 4))):
            lines.append(lines[draw(st.integers(0, len(lines) - 1))])
    return draw(st.permutations(lines))


POLICIES = [
    pytest.param((), {}, id="default"),
    pytest.param(
        ("--click-window", "1h", "--view-window", "30m"), {"click_window_s": 3600, "view_window_s": 1800}, id="windows"
    ),
    pytest.param(("--tz", "UTC"), {"tz": "UTC"}, id="utc"),
    pytest.param(("--currency", "USD"), {"currency": "USD"}, id="usd"),
]


HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
