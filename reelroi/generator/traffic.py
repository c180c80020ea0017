"""The state of a run and its plumbing: delivery buckets, ids, sources, impressions and clicks."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import count
from random import Random
from typing import Any

from reelroi.generator.config import GeneratorConfig
from reelroi.generator.encoding import device_of, dumps
from reelroi.generator.tables import DAY, PRE_CLICK_IMPS, SLOTS
from reelroi.generator.users import User
from reelroi.generator.world import Source, World


class Traffic:
    """The minute-by-minute simulation. Lines go to per-minute delivery buckets."""

    def __init__(self, cfg: GeneratorConfig, world: World, rng: Random, users_per_day: float) -> None:
        self.cfg, self.w, self.rng = cfg, world, rng
        self.rnd = rng.random
        self.clock = world.clock
        self.ids = count(world.next_id)
        self.horizon = world.start + cfg.days * DAY
        self.users_per_day = users_per_day
        self.buckets: defaultdict[int, list[bytes]] = defaultdict(list)
        self.firsts: defaultdict[int, list[tuple[int, User]]] = defaultdict(list)  # D0 sessions due
        self.returns: defaultdict[int, list[int]] = defaultdict(list)  # packed users due back
        self.cur = 0  # minute being generated; nothing is scheduled before it
        self.stale: list[tuple[str, str]] = []  # (click_id, device_id) of clicks > 7 days old
        self.emitted = 0
        self.next_dup = self.gap(cfg.duplicate_share)
        self.next_bad = self.gap(cfg.malformed_share)
        self.plan_share = 0.25 if world.plans else 0.0
        total_w = sum(c.weight for c in world.campaigns) or 1.0
        # Daily budget in CNY: paid users times a per-campaign cost per user.
        self.budget = {c.id: users_per_day * 0.72 * c.cpa * c.weight / total_w for c in world.campaigns}

    # ---- plumbing

    def gap(self, p: float) -> int:
        if p <= 0:
            return 1 << 62
        return self.emitted + 1 + int(math.log(1.0 - self.rnd()) / math.log1p(-p))

    def put(self, t: int, ev: dict[str, Any], delay: int = 0) -> None:
        """Schedule ev (ts t) for delivery at t + delay; facts after the run are dropped."""
        if t < self.horizon:
            m = (t + delay) // 60
            self.buckets[m if m > self.cur else self.cur].append(dumps(ev) + b"\n")

    def put_always(self, t: int, ev: dict[str, Any]) -> None:
        m = t // 60
        self.buckets[m if m > self.cur else self.cur].append(dumps(ev) + b"\n")

    def eid(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def source(self) -> Source | None:
        r = self.rnd()
        if r < self.plan_share:
            return self.w.plan_pick[int(r / self.plan_share * SLOTS)]
        if self.w.campaign_pick:
            return self.w.campaign_pick[int(self.rnd() * SLOTS)]
        return self.w.plan_pick[int(self.rnd() * SLOTS)] if self.w.plan_pick else None

    def device(self) -> str:
        return device_of(next(self.ids))

    def impression(self, t: int, src: Source, dev: str) -> None:
        self.put(
            t,
            {
                "type": "impression",
                "event_id": self.eid("im-"),
                "ts": src.fmt(t),
                "campaign_id": src.id,
                "device_id": dev,
            },
            self.w.late[int(self.rnd() * SLOTS)] if self.rnd() < 0.015 else 0,
        )

    def click(self, t: int, src: Source, dev: str) -> tuple[str, int]:
        """Impressions before a campaign click, then the click; returns (click_id, its ts)."""
        rnd = self.rnd
        if src.key == "campaign_id":
            for _ in range(PRE_CLICK_IMPS[int(rnd() * SLOTS)]):
                self.impression(t, src, dev)
                t += 2 + int(rnd() * 40)
        cid = f"k{next(self.ids):x}"
        self.put(
            t,
            {
                "type": "click",
                "event_id": self.eid("ck-"),
                "ts": src.fmt(t),
                "click_id": cid,
                "device_id": dev,
                src.key: src.id,
            },
            self.w.late[int(rnd() * SLOTS)] if rnd() < 0.015 else 0,
        )
        return cid, t
