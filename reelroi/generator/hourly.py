"""Once an hour: ad spend (and its restatements), fx publication and configuration updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reelroi.generator.tables import COMMISSION_RATES, DAY, DIURNAL, FX_BASE, NO_FX, SGD_RATE, SLOTS
from reelroi.generator.traffic import Traffic


def hourly(tr: Traffic, hour_start: int) -> None:
    rnd, w, clock = tr.rnd, tr.w, tr.clock
    prev = hour_start - 3600
    if prev >= w.start:
        weight = DIURNAL[(prev - w.start) // 3600 % 24] / sum(DIURNAL)
        for c in w.campaigns:
            cny = 0.0 if rnd() < 0.02 else tr.budget[c.id] * weight * (0.7 + 0.6 * rnd())
            cur = "USD" if c.platform == "tiktok" else "CNY"
            amount = cny / w.fx["USD"] if cur == "USD" else cny
            ts = hour_start + w.spend_report[int(rnd() * SLOTS)]
            ev: dict[str, Any] = {
                "type": "ad_spend",
                "event_id": tr.eid("sp-"),
                "ts": c.fmt(ts),
                "campaign_id": c.id,
                "period_start": c.fmt(prev),
                "amount": round(amount, 2) if rnd() < 0.03 else f"{amount:.2f}",
                "currency": cur,
            }
            tr.put_always(ts, ev)
            if rnd() < 0.05:  # the platform restates the hour later
                ts2 = ts + w.restate_lag[int(rnd() * SLOTS)]
                fmt = c.fmt if rnd() < 0.8 else (clock.utc if c.fmt == clock.local else clock.local)
                ev2 = dict(
                    ev,
                    event_id=tr.eid("sp-"),
                    ts=fmt(ts2),
                    period_start=fmt(prev),
                    amount=f"{amount * (0.85 + 0.3 * rnd()):.2f}",
                )
                if rnd() < 0.01:
                    ev2["currency"] = NO_FX  # a broken restatement: rejected, the old one stands
                tr.put(ts2, ev2)
    if hour_start >= tr.horizon:
        return
    day, hour = divmod((hour_start - w.start) // 3600, 24)
    if hour == 9:
        publish_fx(tr, hour_start, day)
    if rnd() < 0.25:
        config_update(tr, hour_start + int(rnd() * 3600))


def publish_fx(tr: Traffic, hour_start: int, day: int) -> None:
    """Daily rates for tomorrow at 09:15, like a central-bank fixing."""
    rnd, w = tr.rnd, tr.w
    eff = tr.cfg.start_date + timedelta(days=day + 1)
    t = hour_start + 15 * 60 + int(rnd() * 60)
    if day == 0:
        tr.put(t, w.fx_event(tr.eid("fx-"), t, "SGD", eff, SGD_RATE))
    if day + 1 < tr.cfg.days:
        for cur in FX_BASE:
            tr.put(t, w.fx_event(tr.eid("fx-"), t, cur, eff, w.walk(tr.rng, cur)))
        if rnd() < 0.3:  # a correction of one of them, later that day
            cur = "USD" if rnd() < 0.5 else "JPY"
            t2 = t + 3 * 3600 + int(rnd() * 3600)
            tr.put(t2, w.fx_event(tr.eid("fx-"), t2, cur, eff, w.fx[cur] * (1 + 0.001 * rnd())))


def config_update(tr: Traffic, t: int) -> None:
    rnd, w = tr.rnd, tr.w
    r = rnd()
    if r < 0.5 and w.campaign_cfg:  # rename or hand over to another buyer
        ev = dict(w.campaign_cfg[tr.rng.choice(sorted(w.campaign_cfg))])
        if "name" in ev and not ev["name"].endswith("复投") and rnd() < 0.5:
            ev["name"] = f"{ev['name']} 复投"
        else:
            ev["buyer_id"] = f"b{int(rnd() * 20) + 1:02d}"
    elif r < 0.8 and w.plan_cfg:  # a new commission rate: applies to all of the plan's money
        ev = dict(w.plan_cfg[tr.rng.choice(sorted(w.plan_cfg))])
        ev["commission_rate"] = tr.rng.choice(COMMISSION_RATES)
    elif w.campaign_cfg:  # a stale copy with an older ts arrives now: must not win
        old = w.campaign_cfg[tr.rng.choice(sorted(w.campaign_cfg))]
        ev = dict(old, event_id=tr.eid("cfg-"), buyer_id="b99")
        ev["ts"] = tr.clock.local(w.start - 40 * DAY + int(rnd() * DAY))
        tr.put(t, ev)
        return
    else:
        return
    ev["event_id"] = tr.eid("cfg-")
    ev["ts"] = tr.clock.local(t)
    key = "campaign_id" if ev["type"] == "campaign" else "plan_id"
    (w.campaign_cfg if key == "campaign_id" else w.plan_cfg)[ev[key]] = ev
    tr.put(t, ev)
