"""How many lines a user makes: scales ``GeneratorConfig.events`` to a number of users."""

from __future__ import annotations

from itertools import chain
from random import Random
from typing import Any

from reelroi.generator.arrivals import arrival
from reelroi.generator.config import GeneratorConfig
from reelroi.generator.encoding import Clock
from reelroi.generator.sessions import due
from reelroi.generator.tables import DAY, SLOTS
from reelroi.generator.traffic import Traffic
from reelroi.generator.world import World


def lines_per_user(cfg: GeneratorConfig) -> float:
    """Average lines one arriving user produces within the run (pilot on 4,000 users)."""

    class _Pilot(Traffic):
        lines = 0

        def put(self, t: int, ev: dict[str, Any], delay: int = 0) -> None:
            if t < self.horizon:
                self.lines += 1

        put_always = put

    clock = Clock()
    rng = Random(cfg.seed ^ 0x5EED_F00D)
    pilot = _Pilot(cfg, World(cfg, rng, clock), rng, 1.0)
    users = 4000
    for _ in range(users):  # arrival times spread like the real run's
        day = int(rng.random() * cfg.days)
        arrival(pilot, pilot.w.start + day * DAY + pilot.w.time_of_day[int(rng.random() * SLOTS)])
    while pilot.firsts or pilot.returns:
        due(pilot, min(chain(pilot.firsts, pilot.returns)))
    return pilot.lines / users


def fixed_lines(cfg: GeneratorConfig, world: World, users_per_day: float) -> float:
    spend = cfg.campaigns * 24 * cfg.days * 1.05
    stale = max(10, min(1000, int(users_per_day) // 200))
    return len(world.config) + spend + stale + cfg.days * 7
