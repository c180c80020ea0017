"""The same world at the wall clock: traffic from a given second on, for ``reelroi demo``.

``generate`` writes whole days as fast as it can; a live demo needs the opposite:
events that happen *now*, at a steady rate, for as long as the demo runs. ``live``
reuses the world, users, sessions, money and dirt of the batch generator and
changes three things:

* users arrive at a flat rate sized to the requested events per second (a demo
  lasts minutes: the day's curve would only make the rate depend on the hour);
* every line is handed out with the second it is due, its own ``ts`` (a late
  delivery or a retry: at once), so a producer that sends a line when the clock
  reaches that second keeps every ``ts`` at or just behind the wall clock;
* ad spend comes as platforms report it during the day: the current hour's
  spend so far, restated every minute or so, then the final figure after the
  hour (SPEC: the greatest ``ts`` of a campaign-hour counts).

Spend and tomorrow's fx rates draw from their own random streams and ids, so the
main stream (and its event ids) depends on the seed only: two runs with the same
seed produce the same users, clicks and money, at times moved by the difference
of their start minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from random import Random
from typing import Any

import orjson

from reelroi.generator.arrivals import arrival
from reelroi.generator.config import GeneratorConfig
from reelroi.generator.encoding import Clock
from reelroi.generator.sessions import due
from reelroi.generator.stream import deliver, prelude
from reelroi.generator.tables import DAY, FX_BASE, LOCAL_TZ, SLOTS
from reelroi.generator.traffic import Traffic
from reelroi.generator.world import Source, World

__all__ = ["RAMP_S", "live"]

RAMP_S = 180  # users are sized so that the first RAMP_S seconds average the rate asked for


def live(cfg: GeneratorConfig, begin: int, events_per_second: float) -> Iterator[tuple[int, bytes]]:
    """``(second due, line)`` from epoch second ``begin`` on, in the order they are due.

    ``cfg.start_date`` is replaced by the local date of ``begin``; the traffic
    lasts until the end of ``cfg.days`` local days from then. ``cfg.users_per_day``
    and ``cfg.events`` are ignored: ``events_per_second`` sizes the users.
    """
    if cfg.days < 1 or events_per_second <= 0:
        raise ValueError("days must be >= 1 and events_per_second > 0")
    cfg = replace(cfg, start_date=datetime.fromtimestamp(begin, LOCAL_TZ).date(), events=None)
    users_per_day = max(1.0, events_per_second * DAY / _lines_per_user_within(cfg, RAMP_S))
    clock = Clock()
    rng = Random(cfg.seed)
    tr = Traffic(cfg, World(cfg, rng, clock), rng, users_per_day)
    spend = _LiveSpend(tr, begin)
    first = begin // 60
    tr.cur = first
    head = [*deliver(tr, prelude(tr) + _tomorrow_fx(tr, begin))]
    per_minute = users_per_day / 1440
    carry = 0.0
    for m in range(first, tr.horizon // 60):
        tr.cur = m
        t0 = m * 60
        spend.minute(t0)
        carry += per_minute
        n = int(carry)
        carry -= n
        for _ in range(n):
            arrival(tr, t0 + int(tr.rnd() * 60))
        due(tr, m)
        lines = [*head, *deliver(tr, tr.buckets.pop(m, []))]
        head = []
        yield from _due_in_order(m, lines, begin)


def _lines_per_user_within(cfg: GeneratorConfig, seconds: int) -> float:
    """Lines due within ``seconds`` of the start, per user arriving in them (pilot on 4,000 users).

    A user's sessions and payments trail their arrival by minutes to hours, so a live
    run starts slower than it ends; sizing on the first minutes makes them the rate asked for.
    """

    class _Pilot(Traffic):
        lines = 0
        until = 0

        def put(self, t: int, ev: dict[str, Any], delay: int = 0) -> None:
            if t + delay < self.until:
                self.lines += 1

        put_always = put

    rng = Random(cfg.seed ^ 0x5EED_F00D)
    pilot = _Pilot(cfg, World(cfg, rng, Clock()), rng, 1.0)
    t0 = pilot.w.start + 12 * 3600
    pilot.until = t0 + seconds
    users = 4000
    for _ in range(users):
        arrival(pilot, t0 + int(rng.random() * seconds))
    while pilot.firsts and min(pilot.firsts) * 60 < pilot.until:
        due(pilot, min(pilot.firsts))
    return max(1.0, pilot.lines / users)


def _due_in_order(minute: int, lines: list[bytes], begin: int) -> Iterator[tuple[int, bytes]]:
    """The lines delivered in ``minute``, each due at its ``ts`` (not before the minute, nor ``begin``)."""
    floor = max(minute * 60, begin)
    due_at = floor
    keyed: list[tuple[int, bytes]] = []
    for line in lines:
        try:
            ts = datetime.fromisoformat(orjson.loads(line)["ts"])
            if ts.tzinfo is not None:  # a malformed line (no offset, bad ts, not JSON) goes out beside the last
                due_at = max(floor, int(ts.timestamp()))
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            pass
        keyed.append((due_at, line))
    keyed.sort(key=lambda pair: pair[0])  # stable: equal seconds keep generation order
    yield from keyed


def _tomorrow_fx(tr: Traffic, begin: int) -> list[bytes]:
    """Rates effective tomorrow, published this morning (the batch run publishes them at 09:15)."""
    w, side = tr.w, Random(tr.cfg.seed ^ 0xF0F0)
    tomorrow = tr.cfg.start_date + timedelta(days=1)
    t = min(begin, w.start + 9 * 3600 + 15 * 60)
    return [
        orjson.dumps(w.fx_event(f"fx-live-{cur}-{tomorrow.isoformat()}", t, cur, tomorrow, w.walk(side, cur))) + b"\n"
        for cur in FX_BASE
    ]


class _LiveSpend:
    """Each campaign's spend of the current hour: so far during it, final after it."""

    def __init__(self, tr: Traffic, begin: int) -> None:
        self.tr, self.begin = tr, begin
        self.hour = -1
        self.rnd = Random().random  # replaced by the hour's own stream before any use
        self.amounts: dict[str, float] = {}  # campaign id -> CNY for the whole current hour

    def minute(self, t0: int) -> None:
        hour = t0 - t0 % 3600
        if hour != self.hour:
            if self.hour >= 0:
                self._final(self.hour)
            self.hour = hour
            side = Random(self.tr.cfg.seed * 1_000_003 + hour // 3600)
            self.rnd = side.random
            self.amounts = {
                c.id: 0.0 if side.random() < 0.02 else self.tr.budget[c.id] / 24 * (0.7 + 0.6 * side.random())
                for c in self.tr.w.campaigns
            }
        since = max(hour, self.begin)
        for c in self.tr.w.campaigns:
            if self.rnd() < 0.3:
                ts = t0 + int(self.rnd() * 60)
                if ts > since:
                    self._report(c, hour, ts, f"sp-{c.id}-{ts}", self.amounts[c.id] * (ts - since) / 3600)

    def _final(self, hour: int) -> None:
        share = min(1.0, (hour + 3600 - self.begin) / 3600)
        for c in self.tr.w.campaigns:
            ts = hour + 3600 + self.tr.w.spend_report[int(self.rnd() * SLOTS)]
            self._report(c, hour, ts, f"sp-{c.id}-{hour}-final", self.amounts[c.id] * share)

    def _report(self, c: Source, hour: int, ts: int, event_id: str, cny: float) -> None:
        w = self.tr.w
        cur = "USD" if c.platform == "tiktok" else "CNY"
        amount = cny / w.fx["USD"] if cur == "USD" else cny
        ev: dict[str, Any] = {
            "type": "ad_spend",
            "event_id": event_id,
            "ts": c.fmt(ts),
            "campaign_id": c.id,
            "period_start": c.fmt(hour),
            "amount": f"{amount:.2f}",
            "currency": cur,
        }
        self.tr.put_always(ts, ev)
