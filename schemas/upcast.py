"""Upcasters: old event payloads rewritten into the current schema.

Every stored event keeps its original bytes; upcasting happens on read, so a
replay of old history always sees the current shape. Version 1 is the current
(and so far only) layout of every event type. A version with no registered
upcaster is read as the current layout: SPEC section 2 defines
``schema_version`` as an integer without limiting it, and a producer that
stamps a newer number on a compatible payload must not lose money.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

# (event type, version) -> function producing the payload of version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def _v0_money_in_cents(payload: Payload) -> Payload:
    """Version 0 (pre-release producers) sent integer cents in ``amount_cents``."""
    out = {k: v for k, v in payload.items() if k != "amount_cents"}
    out["schema_version"] = 1
    if "amount_cents" not in payload:
        return out
    cents = payload["amount_cents"]
    if type(cents) is not int or cents < 0:
        raise ValueError("amount_cents: must be a non-negative JSON integer")
    out["amount"] = f"{cents // 100}.{cents % 100:02d}"
    return out


for _money_type in ("payment", "refund", "ad_spend"):
    UPCASTERS[(_money_type, 0)] = _v0_money_in_cents


def upcast(payload: Payload) -> Payload:
    """Apply upcasters until no registered one matches the payload's version."""
    version = payload.get("schema_version", 1)
    while type(version) is int and (step := UPCASTERS.get((payload.get("type", ""), version))):
        payload = step(payload)
        version = payload.get("schema_version", version + 1)
    return payload
