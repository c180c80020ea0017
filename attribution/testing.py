"""A test kit shipped with the core: event builders and a fold of engine outputs.

Builders return JSON-lines bytes with sensible defaults and keyword overrides,
so a rule test reads like the SPEC example:

    click(ts="2026-11-01T23:30:00+08:00", click_id="k1", campaign_id="cA")
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import orjson

from attribution.engine import Engine, Record
from attribution.outputs import EVENT_ID_DUPLICATE, ORDER_DUPLICATE, Outputs
from attribution.policy import Policy
from attribution.stages.facts import Fact, key_of
from attribution.stages.local import LocalPipeline

_ids = itertools.count(1)
TS = "2026-11-02T10:00:00+08:00"


def line(**fields: Any) -> bytes:
    """One JSON line; a field set to ``...`` is left out."""
    return orjson.dumps({k: v for k, v in fields.items() if v is not ...})


def _event(type_: str, defaults: dict[str, Any], overrides: dict[str, Any]) -> bytes:
    fields = {"type": type_, "event_id": f"{type_}-{next(_ids)}", "ts": TS, **defaults, **overrides}
    return line(**fields)


def campaign(**kw: Any) -> bytes:
    return _event("campaign", {"campaign_id": "cA", "platform": "douyin", "drama_id": "dr1", "buyer_id": "b1"}, kw)


def plan(**kw: Any) -> bytes:
    return _event(
        "promotion_plan", {"plan_id": "pB", "creator_id": "cr1", "drama_id": "dr1", "commission_rate": "0.3"}, kw
    )


def fx(**kw: Any) -> bytes:
    return _event("fx_rate", {"currency": "USD", "rate": "7.1", "effective_date": "2026-11-01"}, kw)


def spend(**kw: Any) -> bytes:
    defaults = {"campaign_id": "cA", "period_start": "2026-11-02T00:00:00+08:00", "amount": "100", "currency": "CNY"}
    return _event("ad_spend", defaults, kw)


def impression(**kw: Any) -> bytes:
    return _event("impression", {"campaign_id": "cA", "device_id": "d1"}, kw)


def click(**kw: Any) -> bytes:
    defaults: dict[str, Any] = {"click_id": f"k{next(_ids)}", "device_id": "d1"}
    if "plan_id" not in kw and "campaign_id" not in kw:
        defaults["campaign_id"] = "cA"
    return _event("click", defaults, kw)


def redirect(**kw: Any) -> bytes:
    return _event("redirect", {"user_id": "u1", "app_id": "wx1", "host": "wechat"}, kw)


def payment(**kw: Any) -> bytes:
    defaults = {
        "order_id": f"o{next(_ids)}", "user_id": "u1", "drama_id": "dr1", "amount": "30.00",
        "currency": "CNY", "kind": "unlock",
    }  # fmt: skip
    return _event("payment", defaults, kw)


def ad_unlock(**kw: Any) -> bytes:
    return _event("ad_unlock", {"user_id": "u1", "drama_id": "dr1", "revenue": "0.50", "currency": "CNY"}, kw)


def refund(**kw: Any) -> bytes:
    return _event("refund", {"order_id": "o1", "amount": "10.00", "currency": "CNY"}, kw)


def plan_user(user: str, plan: str, day: str) -> list[bytes]:
    """A user acquired through a creator-clip click of ``plan`` on local date ``day`` (Asia/Shanghai)."""
    device = f"dev-{user}"
    return [
        click(ts=f"{day}T09:00:00+08:00", device_id=device, plan_id=plan),
        redirect(ts=f"{day}T09:05:00+08:00", user_id=user, device_id=device),
    ]


def pay(order: str, user: str, ts: str, amount: str, drama: str = "dr1") -> bytes:
    """The payment of ``order`` by ``user``, event id ``pay-<order>``."""
    return payment(event_id=f"pay-{order}", order_id=order, user_id=user, ts=ts, amount=amount, drama_id=drama)


def records(lines: Iterable[bytes], prefix: str = "t") -> list[Record]:
    return [Record(f"{prefix}:{i}", raw) for i, raw in enumerate(lines, start=1)]


class Folded:
    """The final state of every keyed table after applying outputs in order (what a sink holds)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Any]] = {
            "events": {}, "rejections": {}, "duplicates": {}, "users": {}, "money": {}, "spend": {},
            "campaigns": {}, "plans": {}, "fx": {},
        }  # fmt: skip

    def apply(self, out: Outputs) -> None:
        t = self.tables
        for e in out.events:
            t["events"][e.event_id] = e
        for r in out.rejections:
            t["rejections"][r.key] = r
        for d in out.duplicates:
            t["duplicates"][d.key] = d
        for u in out.users:
            t["users"][u.user_id] = u
        for m in out.money:
            t["money"][m.event_id] = m
        for s in out.spend:
            t["spend"][(s.campaign_id, s.period_us)] = s
        for c in out.campaigns:
            t["campaigns"][c.campaign_id] = c
        for p in out.plans:
            t["plans"][p.plan_id] = p
        for f in out.fx:
            t["fx"][(f.currency, f.effective_date)] = f

    def active(self, table: str) -> dict[Any, Any]:
        return {k: v for k, v in self.tables[table].items() if getattr(v, "active", True)}

    def facts(self) -> dict[str, Any]:
        """Order-independent content: active user/money/spend facts, verdicts by event, counts."""
        rejections = self.active("rejections")
        return {
            "users": self.active("users"),
            "money": self.active("money"),
            "spend": self.active("spend"),
            "plans": self.active("plans"),
            "fx": self.active("fx"),
            "state_rejections": {k: v.reason for k, v in rejections.items() if not v.structural},
            "structural_rejections": sorted(v.reason for v in rejections.values() if v.structural),
            "order_duplicates": sorted(k for k, v in self.active("duplicates").items() if v.kind == ORDER_DUPLICATE),
            "event_duplicates": sum(1 for v in self.active("duplicates").values() if v.kind == EVENT_ID_DUPLICATE),
        }


_FIELDS = {
    "event": "events", "rejection": "rejections", "duplicate": "duplicates", "user": "users", "money": "money",
    "spend": "spend", "campaign": "campaigns", "plan": "plans", "fx": "fx",
}  # fmt: skip


def fold_facts(facts: Iterable[Fact]) -> Folded:
    """What a sink holds after these facts in any order: per key, the fact with the greatest version."""
    winners: dict[tuple[str, Any], Fact] = {}
    for fact in facts:
        key = (fact.kind, key_of(fact))
        held = winners.get(key)
        if held is None or fact.version >= held.version:
            winners[key] = fact
    out = Outputs()
    for fact in winners.values():
        if fact.kind == "money" and not fact.row.active:
            continue  # keyed by (user, event): a retraction under one user must not hide the row of another
        getattr(out, _FIELDS[fact.kind]).append(fact.row)
    events = [m.event_id for m in out.money]
    if len(events) != len(set(events)):
        raise AssertionError(f"money counted under two users: {sorted(e for e in events if events.count(e) > 1)}")
    folded = Folded()
    folded.apply(out)
    return folded


def run_stages(
    lines: Iterable[bytes], policy: Policy | None = None, batch_sizes: Iterable[int] | None = None
) -> Folded:
    """``run`` on the stages (attribution/stages/local.py) instead of the engine."""
    pipeline = LocalPipeline(policy or Policy())
    recs = records(lines)
    facts: list[Fact] = []
    sizes = itertools.chain(batch_sizes or (), itertools.repeat(max(1, len(recs))))
    start = 0
    while start < len(recs):
        size = max(1, next(sizes))
        facts.extend(pipeline.process(recs[start : start + size]))
        start += size
    return fold_facts(facts)


def run(lines: Iterable[bytes], policy: Policy | None = None, batch_sizes: Iterable[int] | None = None) -> Folded:
    """Feed lines through a fresh engine (in batches of the given sizes, else one batch) and fold."""
    engine = Engine(policy or Policy())
    folded = Folded()
    recs = records(lines)
    if batch_sizes is None:
        folded.apply(engine.process(recs))
        return folded
    start = 0
    for size in itertools.chain(batch_sizes, itertools.repeat(max(1, len(recs)))):
        if start >= len(recs):
            break
        folded.apply(engine.process(recs[start : start + max(1, size)]))
        start += max(1, size)
    return folded
