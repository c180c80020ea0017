"""Sessions: a user's visit, D0 at acquisition, later on return days."""

from __future__ import annotations

from reelroi.generator.money import payment
from reelroi.generator.tables import DAY, ENG_LEVELS, IAA_D0, IAA_LATER, PAYMENTS, RETURN, SLOTS
from reelroi.generator.traffic import Traffic
from reelroi.generator.users import User


def session(tr: Traffic, t: int, u: User) -> None:
    rnd, w, fmt = tr.rnd, tr.w, u.fmt
    first = u.day == 0
    before = False  # a payment timestamped just before the redirect
    if first and u.redirect is not None:
        ev = u.redirect
        u.redirect = None
        ev["event_id"] = tr.eid("rd-")
        ev["ts"] = fmt(t)
        r = rnd()
        if r < 0.004:  # the redirect is delivered late: the payment arrives first
            tr.put(t, ev, 180 + int(rnd() * 1000))
            payment(tr, t + 20 + int(rnd() * 60), u, u.drama)
        elif r < 0.006:
            before = True
            tr.put(t, ev)
        else:
            tr.put(t, ev, w.late[int(rnd() * SLOTS)] if rnd() < 0.01 else 0)
    elif not first:
        r = rnd()
        if u.late_redirect:  # first redirect of a money-only user: rule 1 applies from now
            u.late_redirect = False
            tr.put(
                t,
                {
                    "type": "redirect",
                    "event_id": tr.eid("rd-"),
                    "ts": fmt(t),
                    "user_id": u.uid,
                    "app_id": u.app,
                    "host": u.host,
                },
            )
        elif r < 0.05:  # back through a new ad click: the source must not change
            src = tr.source()
            if src is not None:
                dev = tr.device()
                cid, t_click = tr.click(t, src, dev)
                t = t_click + 5 + int(rnd() * 60)
                tr.put(
                    t,
                    {
                        "type": "redirect",
                        "event_id": tr.eid("rd-"),
                        "ts": fmt(t),
                        "user_id": u.uid,
                        "app_id": u.app,
                        "host": u.host,
                        "click_id": cid,
                        "device_id": dev,
                    },
                )
        elif r < 0.5:
            ev = {
                "type": "redirect",
                "event_id": tr.eid("rd-"),
                "ts": fmt(t),
                "user_id": u.uid,
                "app_id": u.app,
                "host": u.host,
            }
            if rnd() < 0.3:
                ev["device_id"] = u.device
            tr.put(t, ev)
    drama = u.drama if rnd() < 0.9 else w.dramas[int(rnd() * len(w.dramas))]

    if u.iaa:
        tt = t
        revenue = w.revenue[u.cur]
        for _ in range((IAA_D0 if first else IAA_LATER)[int(rnd() * SLOTS)]):
            tt += w.money_gap[int(rnd() * SLOTS)]
            num = rnd() < 0.03
            rev = revenue[int(rnd() * SLOTS)]
            tr.put(
                tt,
                {
                    "type": "ad_unlock",
                    "event_id": tr.eid("au-"),
                    "ts": fmt(tt),
                    "user_id": u.uid,
                    "drama_id": drama,
                    "revenue": float(rev) if num else rev,
                    "currency": u.cur,
                    "episode": u.episode,
                },
            )
            u.episode += 1

    # Chance to pay in this session: D0 by region, later mostly returning payers.
    p = (0.07 if u.cur != "CNY" else 0.10) if first else (0.22 if u.paid else 0.025)
    if before or rnd() < p:
        tt = t - 5 - int(rnd() * 40) if before else t + w.first_money[int(rnd() * SLOTS)]
        for _ in range(PAYMENTS[int(rnd() * SLOTS)]):
            payment(tr, tt, u, drama)
            tt += w.money_gap[int(rnd() * SLOTS)]

    k = u.day + 1
    midnight = w.start + u.acq_day * DAY
    eng = ENG_LEVELS[u.eng]
    while k < len(RETURN) and midnight + k * DAY < tr.horizon:
        if rnd() < RETURN[k] * eng:
            u.day = k
            t_back = midnight + k * DAY + w.time_of_day[int(rnd() * SLOTS)]
            if t_back < tr.horizon:
                tr.returns[t_back // 60].append(u.pack(t_back % 60))
            return
        k += 1


def due(tr: Traffic, m: int) -> None:
    """Run the sessions that start in minute m."""
    first = tr.firsts.pop(m, None)
    if first:
        for t, u in first:
            session(tr, t, u)
    back = tr.returns.pop(m, None)
    if back:
        clock = tr.clock
        for code in back:
            u, second = User.unpack(code, clock)
            session(tr, m * 60 + second, u)
