"""Arrivals: whoever first touches the system at a second, with the ad noise around them."""

from __future__ import annotations

from typing import Any

from reelroi.generator.encoding import device_of
from reelroi.generator.tables import (
    CURRENCY_INDEX,
    DAY,
    ENGAGEMENT,
    HOSTAPP_INDEX,
    NOISE_DEVICES,
    NOISE_IMPS,
    OVERSEAS_CUR,
    SLOTS,
    VT_IMPS,
)
from reelroi.generator.traffic import Traffic
from reelroi.generator.users import User
from reelroi.generator.world import HOSTS, Source


def arrival(tr: Traffic, t: int) -> None:
    rnd, w = tr.rnd, tr.w
    noise(tr, t)
    r = rnd()
    n = next(tr.ids)
    dev = device_of(n)
    src: Source | None = None
    click_id: str | None = None
    redirect_dev: str | None = None
    lag = 0
    if r < 0.60:  # redirect carries a click_id
        src = tr.source()
        if src is not None:
            click_id, t_click = tr.click(t, src, dev)
            lag = t_click - t + w.click_lag[int(rnd() * SLOTS)]
            r2 = rnd()
            if r2 < 0.025 and tr.stale:  # a stale click (> 7 days): falls back to the device
                click_id, _ = tr.stale[int(rnd() * len(tr.stale))]
                redirect_dev = dev if rnd() < 0.5 else None
            elif r2 < 0.04:  # the click never reached us
                click_id = f"k-lost-{next(tr.ids):x}"
                redirect_dev = dev if rnd() < 0.5 else None
            elif r2 < 0.34:  # SDKs that also pass a device, not always the clicking one
                redirect_dev = dev if rnd() < 0.5 else tr.device()
    elif r < 0.85:  # redirect carries only a device_id
        redirect_dev = dev
        r2 = rnd()
        if r2 < 0.55:  # the device clicked; sometimes twice, the later click wins
            src = tr.source()
            if src is not None:
                t_click = t
                if rnd() < 0.12:
                    other = tr.source()
                    if other is not None:
                        _, t_click = tr.click(t, other, dev)
                        t_click += 60 + int(rnd() * 1200)
                _, t_click = tr.click(t_click, src, dev)
                lag = t_click - t + w.click_lag[int(rnd() * SLOTS)]
        elif r2 < 0.90 and w.campaign_pick:  # view-through: impressions, no click
            src = w.campaign_pick[int(rnd() * SLOTS)]
            tt = t
            for _ in range(VT_IMPS[int(rnd() * SLOTS)]):
                tr.impression(tt, src, dev)
                tt += 5 + int(rnd() * 300)
            lag = tt - t + w.vt_lag[int(rnd() * SLOTS)]
    elif r < 0.995 and rnd() < 0.35:  # neither: organic, even though the device clicked
        src = tr.source()
        if src is not None:
            _, t_click = tr.click(t, src, dev)
            lag = t_click - t + w.click_lag[int(rnd() * SLOTS)]
    user = new_user(tr, n, src)
    if r >= 0.995:  # money but no redirect; for some the redirect comes on a later day
        user.late_redirect = rnd() < 0.3
        user.iaa = True
    else:
        ev: dict[str, Any] = {
            "type": "redirect",
            "event_id": "",
            "ts": "",
            "user_id": user.uid,
            "app_id": user.app,
            "host": user.host,
        }
        if click_id is not None:
            ev["click_id"] = click_id
        if redirect_dev is not None:
            ev["device_id"] = redirect_dev
        user.redirect = ev
    t_acq = t + lag
    user.acq_day = (t_acq - tr.w.start) // DAY
    if t_acq < tr.horizon:
        tr.firsts[t_acq // 60].append((t_acq, user))


def noise(tr: Traffic, t: int) -> None:
    """Devices that see ads and never redirect, and clicks that bounce."""
    rnd, w = tr.rnd, tr.w
    if w.campaign_pick:
        for _ in range(NOISE_DEVICES[int(rnd() * SLOTS)]):
            src = w.campaign_pick[int(rnd() * SLOTS)]
            dev = tr.device()
            tt = t + int(rnd() * 600)
            for _ in range(NOISE_IMPS[int(rnd() * SLOTS)]):
                tr.impression(tt, src, dev)
                tt += 3 + int(rnd() * 240)
    if rnd() < 0.25:
        bounced = tr.source()
        if bounced is not None:
            tr.click(t + int(rnd() * 300), bounced, tr.device())


def new_user(tr: Traffic, n: int, src: Source | None) -> User:
    rnd, dramas = tr.rnd, len(tr.w.dramas)
    if src is None:
        overseas = rnd() < 0.08
        hosts = HOSTS["organic_overseas" if overseas else "organic"]
        drama = int(rnd() * dramas)
    else:
        overseas = src.overseas
        hosts = src.hosts
        drama = int(src.drama[2:]) - 1 if rnd() < 0.85 else int(rnd() * dramas)
    hostapp = HOSTAPP_INDEX[hosts[int(rnd() * SLOTS)]]
    cur = OVERSEAS_CUR[int(rnd() * SLOTS)] if overseas else "CNY"
    utc = rnd() < 0.9 if overseas else rnd() < 0.15
    return User(
        n,
        tr.clock,
        utc,
        CURRENCY_INDEX[cur],
        drama,
        hostapp,
        ENGAGEMENT[int(rnd() * SLOTS)],
        rnd() < (0.35 if overseas else 0.45),
    )
