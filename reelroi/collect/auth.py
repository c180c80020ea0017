"""Tokens held in memory: loaded from the token store at start, refreshed from it in a thread.

The collector answers from memory (a SHA-256 and a dict lookup), never with a
query per request. Within ``refresh_s`` a revoked token stops working and a new
one starts. On the embedded engine this process holds the database, so nothing
else can create or revoke tokens in it while the collector runs; with a
ClickHouse server every refresh sees what ``reelroi token`` did.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

from reelroi.collect.links import link_mac

log = logging.getLogger("reelroi.collect")
PRODUCER = "producer"


class Holder(NamedTuple):
    token_id: str
    role: str
    name: str
    subject: str


class Tokens:
    """token_id -> (secret hash, holder) of the unrevoked tokens; swapped whole on each refresh."""

    def __init__(self, load: Callable[[], dict[str, tuple[str, str, str, str]]]) -> None:
        self._load = load
        self._known: dict[str, tuple[str, Holder]] = {}
        self._links: dict[tuple[str, str], str] = {}  # (token_id, platform) -> mac, computed once
        self.refresh()

    def refresh(self) -> None:
        rows = self._load()
        self._known = {tid: (row[0], Holder(tid, row[1], row[2], row[3])) for tid, row in rows.items()}
        self._links = {}

    def producers(self) -> int:
        return sum(1 for _, holder in self._known.values() if holder.role == PRODUCER)

    def bearer(self, authorization: bytes | None) -> Holder | None:
        """The holder of ``Authorization: Bearer rr_<id>_<secret>`` (any role), or None."""
        if not authorization or not authorization.startswith(b"Bearer ") or len(authorization) > 250:
            return None
        parts = authorization[7:].strip().split(b"_", 2)
        if len(parts) != 3 or parts[0] != b"rr":
            return None
        found = self._known.get(parts[1].decode("latin-1"))
        if found is None or not hmac.compare_digest(found[0].encode(), hashlib.sha256(parts[2]).hexdigest().encode()):
            return None
        return found[1]

    def link(self, key: str | None, platform: str) -> Holder | None:
        """The producer whose link key for ``platform`` is ``key`` (``<token_id>.<mac>``), or None."""
        if not key or len(key) > 100 or "." not in key or not key.isascii():
            return None
        token_id, mac = key.split(".", 1)
        found = self._known.get(token_id)
        if found is None or found[1].role != PRODUCER:
            return None
        slot = (token_id, platform)
        expected = self._links.get(slot)
        if expected is None:
            expected = self._links[slot] = link_mac(found[0], platform)
        return found[1] if hmac.compare_digest(expected, mac) else None

    def refresh_every(self, seconds: float, stop: threading.Event) -> threading.Thread:
        """Refresh in a daemon thread until ``stop``; a failed refresh keeps the tokens known so far."""

        def run() -> None:
            while not stop.wait(seconds):
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001 - the store may be down for a while: keep serving
                    log.warning("token refresh failed, keeping %d known tokens: %s", len(self._known), exc)

        thread = threading.Thread(target=run, name="collect-tokens", daemon=True)
        thread.start()
        return thread
