"""A small world with a postback ledger of every status, for the ledger's readers, routes and page.

Two buyers: ``bA`` with campaigns ``cA1`` (douyin, through Ocean Engine) and
``cA2`` (tencent), ``bB`` with ``cB1`` (kuaishou). The events are replayed as
usual; the ledger rows are written straight into ``postback_decisions`` and
``postback_deliveries`` as the postback stage and the sender would
(``write_ledger``), since a replay makes no postback decisions.
``EXPECTED`` is what the per-campaign summary must say, counted by hand.

Run as a script (``python -m tests.postback_ledger DSN``) it writes the ledger
into a database the ``reelroi`` command has built: the browser tests do so
before ``reelroi serve`` opens the same embedded directory.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime
from decimal import Decimal
from typing import Any

from attribution import testing as kit
from attribution.outputs import PostbackDecision, PostbackDelivery
from attribution.stages.facts import Fact

DAY = "2026-11-02"
PLATFORMS = {"cA1": "oceanengine", "cA2": "tencent", "cB1": "kuaishou"}
# (campaign, user, [(order, amount)])
USERS = [
    ("cA1", "u1", [("o1", "30"), ("o2", "50")]),
    ("cA1", "u2", [("o3", "20")]),
    ("cA1", "u3", []),
    ("cA2", "u4", [("o4", "60")]),
    ("cA2", "u5", []),
    ("cB1", "u6", [("o6", "40")]),
]


def events() -> list[bytes]:
    lines = [
        kit.campaign(campaign_id="cA1", buyer_id="bA", platform="douyin", name="春节 A1"),
        kit.campaign(campaign_id="cA2", buyer_id="bA", platform="tencent", name='=HYPERLINK("x")'),
        kit.campaign(campaign_id="cB1", buyer_id="bB", platform="kuaishou", name="B1"),
        kit.spend(campaign_id="cA1", amount="100"),
        kit.spend(campaign_id="cA2", amount="80"),
        kit.spend(campaign_id="cB1", amount="50"),
    ]
    for i, (campaign, user, orders) in enumerate(USERS):
        lines.append(kit.click(ts=f"{DAY}T09:00:00+08:00", click_id=f"k{i}", device_id=f"d{i}", campaign_id=campaign))
        lines.append(kit.redirect(ts=f"{DAY}T09:05:00+08:00", user_id=user, click_id=f"k{i}"))
        for order, amount in orders:
            lines.append(kit.payment(ts=f"{DAY}T10:00:00+08:00", user_id=user, order_id=order, amount=amount))
    return lines


def _us(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000)


ACTIVATED = _us(f"{DAY}T09:05:00+08:00")
PAID = _us(f"{DAY}T10:00:00+08:00")
SETTLE = 600_000_000


def key(campaign: str, kind: str, ref: str) -> str:
    return hashlib.sha256(f"{PLATFORMS[campaign]}|cb-{campaign}|{kind}|{ref}".encode()).hexdigest()


def decision(campaign: str, kind: str, user: str, order: str = "", amount: str = "0", **kw: Any) -> PostbackDecision:
    at = PAID if kind == "pay" else ACTIVATED
    base = PostbackDecision(
        key(campaign, kind, order or user), PLATFORMS[campaign], campaign, f"click-{user}", f"cb-{campaign}", user,
        order, kind, Decimal(amount), at, at + SETTLE, "send", "every_pay" if kind == "pay" else "activate",
    )  # fmt: skip
    return base._replace(**kw)


def delivery(d: PostbackDecision, status: str, attempts: int, answer: str) -> PostbackDelivery:
    return PostbackDelivery(d.key, status, attempts, answer, d.decided_us + 1_000_000 * attempts)


def ledger() -> tuple[list[PostbackDecision], list[PostbackDelivery]]:
    """Every status once or more: sent, sending, pending, failed, each held_*, superseded (one already sent)."""
    a1_u1 = decision("cA1", "activate", "u1")
    a1_u2 = decision("cA1", "activate", "u2")
    a1_u3 = decision("cA1", "activate", "u3")  # pending: the sender has written nothing yet
    a1_o1 = decision("cA1", "pay", "u1", "o1", "30")
    a1_o2 = decision("cA1", "pay", "u1", "o2", "50", decision="held_ratio", detail="ratio 0.5: not in the share")
    a1_o3 = decision("cA1", "pay", "u2", "o3", "20", decision="held_min_amount", detail="min_amount 25")
    a2_u4 = decision("cA2", "activate", "u4")
    a2_u5 = decision("cA2", "activate", "u5", decision="held_kind", detail="kinds first_pay: activate not sent")
    a2_o4 = decision("cA2", "pay", "u4", "o4", "60", detail="first_pay")
    a2_u9 = decision("cA2", "activate", "u9", decision="superseded", detail="the user's source changed")
    gone = decision("cA2", "pay", "u5", "o9", "99", active=False)  # retracted: in no figure and no list
    b1_u6 = decision("cB1", "activate", "u6")
    b1_o6 = decision("cB1", "pay", "u6", "o6", "40", decision="held_ratio", detail="ratio 0")
    decisions = [a1_u1, a1_u2, a1_u3, a1_o1, a1_o2, a1_o3, a2_u4, a2_u5, a2_o4, a2_u9, gone, b1_u6, b1_o6]
    deliveries = [
        delivery(a1_u1, "sent", 1, "200 code=0 success"),
        delivery(a1_u2, "sending", 2, "503"),
        delivery(a1_o1, "sent", 3, "200 code=0 success"),
        delivery(a2_u4, "failed", 7, "400 code=40001 invalid callback \x1b[31m"),
        delivery(a2_o4, "sent", 1, "200 code=0"),
        delivery(a2_u9, "sent", 1, "200 code=0"),
        delivery(gone, "sent", 1, "200"),
        delivery(b1_u6, "sent", 1, "200 result=1"),
    ]
    return decisions, deliveries


def facts() -> list[Fact]:
    decisions, deliveries = ledger()
    out = [Fact("postback", 10 + i, d) for i, d in enumerate(decisions)]
    # an older delivery fact of a key goes first: the greatest version must win
    out.append(Fact("delivery", 1, PostbackDelivery(decisions[0].key, "sending", 1, "", decisions[0].decided_us)))
    out += [Fact("delivery", 100 + i, d) for i, d in enumerate(deliveries)]
    return out


ZERO = {
    "activations": 0, "pays": 0, "decided_send": 0, "sent": 0, "sent_activations": 0, "sent_pays": 0, "pending": 0,
    "sending": 0, "failed": 0, "held_kind": 0, "held_min_amount": 0, "held_ratio": 0, "superseded": 0,
    "superseded_sent": 0, "pay_value": "0.00", "sent_pay_value": "0.00",
}  # fmt: skip
EXPECTED = {
    "cA1": {
        **ZERO, "activations": 3, "pays": 3, "pay_value": "100.00", "decided_send": 4, "sent": 2, "sent_activations": 1,
        "sent_pays": 1, "sent_pay_value": "30.00", "sending": 1, "pending": 1, "held_ratio": 1, "held_min_amount": 1,
    },
    "cA2": {
        **ZERO, "activations": 2, "pays": 1, "pay_value": "60.00", "decided_send": 2, "sent": 1, "sent_pays": 1,
        "sent_pay_value": "60.00", "failed": 1, "held_kind": 1, "superseded": 1, "superseded_sent": 1,
    },
    "cB1": {
        **ZERO, "activations": 1, "pays": 1, "pay_value": "40.00", "decided_send": 1, "sent": 1, "sent_activations": 1,
        "held_ratio": 1,
    },
}  # fmt: skip
BUYERS = {"cA1": "bA", "cA2": "bA", "cB1": "bB"}


def write_ledger(client: Any, db: str) -> None:
    from sinks.writer import ClickHouseSink

    ClickHouseSink(client, db).write_facts(facts())


def main(dsn: str) -> None:
    from reelroi.cli_common import open_store

    client, db = open_store(dsn)
    write_ledger(client, db)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1])
