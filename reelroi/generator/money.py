"""Payments and refunds, with re-sent notifications and refunds that go wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reelroi.generator.encoding import cents_str
from reelroi.generator.tables import KIND, SLOTS, ZERO_DECIMAL
from reelroi.generator.traffic import Traffic
from reelroi.generator.users import User


def payment(tr: Traffic, t: int, u: User, drama: str) -> None:
    rnd, w = tr.rnd, tr.w
    kind = KIND[int(rnd() * SLOTS)]
    s, cents, num = w.prices[u.cur][kind][int(rnd() * SLOTS)]
    order = f"o{next(tr.ids)}"
    ev: dict[str, Any] = {
        "type": "payment",
        "event_id": tr.eid("pay-"),
        "ts": u.fmt(t),
        "order_id": order,
        "user_id": u.uid,
        "drama_id": drama,
        "amount": num if rnd() < 0.04 else s,
        "currency": u.cur,
        "kind": kind,
    }
    if kind == "unlock":
        ev["episode"] = u.episode
        u.episode += 1
    tr.put(t, ev)
    u.paid = True
    r = rnd()
    if r < 0.006:  # the payment provider re-sends its notification: same order, new event
        t2 = t + 1 + int(rnd() * 30)
        tr.put(t2, dict(ev, event_id=tr.eid("pay-"), ts=u.fmt(t2)))
    elif r < 0.026:
        refunds(tr, t, order, cents, u)
    elif r < 0.028:  # somebody refunds an order that never reached us
        refund(tr, t + w.refund_lag[int(rnd() * SLOTS)], f"o{next(tr.ids)}", cents, u.cur, u.fmt)


def refunds(tr: Traffic, t: int, order: str, cents: int, u: User) -> None:
    rnd, w = tr.rnd, tr.w
    t_refund = t + w.refund_lag[int(rnd() * SLOTS)]
    r = rnd()
    if r < 0.55:  # full
        refund(tr, t_refund, order, cents, u.cur, u.fmt)
    elif r < 0.85:  # partial, sometimes a second partial, which may go over
        part = max(1, int(cents * (0.2 + 0.6 * rnd())))
        if u.cur in ZERO_DECIMAL:
            part = max(100, part - part % 100)
        refund(tr, t_refund, order, part, u.cur, u.fmt)
        if rnd() < 0.3:
            rest = cents - part
            second = rest + 100 if rnd() < 0.3 else max(1, rest // 2)
            refund(tr, t_refund + w.refund_lag[int(rnd() * SLOTS)], order, second, u.cur, u.fmt)
    elif r < 0.92:  # asks for more than was paid
        refund(tr, t_refund, order, cents + max(100, cents // 2), u.cur, u.fmt)
    elif r < 0.96:  # in another currency than the payment
        refund(tr, t_refund, order, cents, "USD" if u.cur == "CNY" else "CNY", u.fmt)
    else:  # stamped (clock skew) before the payment it refunds, delivered after it
        ts = t - 1 - int(rnd() * 30)
        tr.put(
            ts,
            {
                "type": "refund",
                "event_id": tr.eid("rf-"),
                "ts": u.fmt(ts),
                "order_id": order,
                "amount": cents_str(cents, u.cur),
                "currency": u.cur,
            },
            120 + int(rnd() * 3600),
        )


def refund(tr: Traffic, t: int, order: str, cents: int, cur: str, fmt: Callable[[int], str]) -> None:
    tr.put(
        t,
        {
            "type": "refund",
            "event_id": tr.eid("rf-"),
            "ts": fmt(t),
            "order_id": order,
            "amount": cents_str(cents, cur),
            "currency": cur,
        },
    )
