"""Upcasters: old event payloads rewritten into the current schema.

Every stored event keeps its original bytes; upcasting happens on read, so a
replay of old history always sees the current shape. SPEC section 2 defines
one layout per event type and ``schema_version`` as any integer, so no
upcaster is registered today and every version is read as the current layout
(a producer that stamps another number on a compatible payload must not lose
money). When SPEC gives an older layout, its upcaster goes into ``UPCASTERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

# (event type, version) -> function producing the payload of version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcast(payload: Payload) -> Payload:
    """Apply upcasters until no registered one matches the payload's version."""
    version = payload.get("schema_version", 1)
    while type(version) is int and (step := UPCASTERS.get((payload.get("type", ""), version))):
        payload = step(payload)
        version = payload.get("schema_version", version + 1)
    return payload
