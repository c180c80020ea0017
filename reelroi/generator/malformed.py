"""Malformed lines: what SPEC section 4 must reject."""

from __future__ import annotations

from reelroi.generator.encoding import json_line
from reelroi.generator.traffic import Traffic


def malformed_line(tr: Traffic, t: int) -> bytes:
    """One line that SPEC section 4 must reject (invalid_json, unknown_type or invalid_field)."""
    rng = tr.rng
    n = next(tr.ids)
    ts = tr.clock.local(t)
    eid = f"bad-{n}"
    pay = {"type": "payment", "event_id": eid, "ts": ts, "order_id": f"ob{n}", "user_id": f"ub{n}",
           "drama_id": "dr001", "amount": "9.90", "currency": "CNY", "kind": "unlock"}  # fmt: skip
    click = {"type": "click", "event_id": eid, "ts": ts, "click_id": f"kb{n}", "device_id": f"db{n}"}
    k = rng.randrange(22)
    if k == 0:  # a producer cut off mid-line
        return json_line(pay)[: rng.randrange(10, 60)] + b"\n"
    if k == 1:  # not UTF-8
        return b"\xff\xfe\x00garbage from a misconfigured producer " + str(n).encode() + b"\n"
    if k == 2:
        return b"HTTP/1.1 502 Bad Gateway\n"
    if k == 3:  # JSON, but not an object
        return json_line(rng.choice([[pay], ["impression", n, ts], "payment", None]))
    if k == 4:
        return json_line(dict(pay, type=rng.choice(["install", "Payment", "purchase", "pageview"])))
    if k == 5:
        return json_line({f: v for f, v in pay.items() if f != rng.choice(["order_id", "user_id", "amount", "kind"])})
    if k == 6:
        return json_line(dict(pay, currency=rng.choice(["usd", "Cny", "US$", "RMB1", ""])))
    if k == 7:
        return json_line(dict(pay, amount=rng.choice(["-9.90", -5, "-0.01"])))
    if k == 8:
        return json_line(dict(pay, amount=rng.choice(["9.99999", "1.00001", 0.12345])))
    if k == 9:
        return json_line(dict(pay, amount=rng.choice(["1e3", "9,90", "¥9.90", True, "1000000000000"])))
    if k == 10:
        return json_line(dict(click, ts=ts[:19], campaign_id="dy0001"))  # no offset
    if k == 11:
        return json_line(dict(click, campaign_id="dy0001", plan_id="pl0001"))
    if k == 12:
        return json_line(click)  # neither campaign_id nor plan_id
    if k == 13:
        return json_line(dict(click, type=None, campaign_id="dy0001"))
    if k == 14:
        return json_line(dict(pay, user_id=None))
    if k == 15:
        return json_line(dict(pay, schema_version="1"))
    if k == 16:
        return json_line(dict(pay, event_id=rng.choice(["", "x" * 129])))
    if k == 17:
        return json_line(dict(pay, kind="donation"))
    if k == 18:
        redirect = {"type": "redirect", "event_id": eid, "ts": ts, "user_id": f"ub{n}", "app_id": "wx5c9a1f3e7b2d4a60"}
        return json_line(dict(redirect, host=rng.choice(["h5", "WeChat", "web"])))
    if k == 19:
        spend = {"type": "ad_spend", "event_id": eid, "ts": ts, "campaign_id": "dy0001", "currency": "CNY"}
        return json_line(dict(spend, period_start=ts[:14] + "30:00+08:00", amount="12.00"))  # not hour-aligned
    if k == 20:
        fx = {"type": "fx_rate", "event_id": eid, "ts": ts, "currency": "USD", "effective_date": "2026-11-01"}
        plan = {"type": "promotion_plan", "event_id": eid, "ts": ts, "plan_id": f"plb{n}", "creator_id": "cr001"}
        return json_line(
            rng.choice([dict(fx, rate="0"), dict(fx, rate="-7.1"), dict(plan, drama_id="dr001", commission_rate="1.5")])
        )
    bad_ts = rng.choice([ts[:11] + "25" + ts[13:], ts[:5] + "13" + ts[7:], ts[:10] + " " + ts[11:19], "1793491200"])
    return json_line(dict(pay, ts=bad_ts))
