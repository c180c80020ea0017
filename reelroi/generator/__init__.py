"""Seeded, streaming traffic generator for reelroi (events of SPEC.md section 2).

``generate(cfg)`` yields JSON lines that look like a day of a micro short drama
business: configuration first (campaigns, creator promotion plans, fx rates),
then, minute by minute, ad impressions and clicks, redirects into the
mini-program or app, payments, rewarded-ad unlocks, refunds and hourly ad spend,
with the dirt a real pipeline sees: exact duplicates (producer retries), late
deliveries, restated spend, re-sent payment notifications, refunds that
over-refund or name unknown orders, currencies without a rate and a share of
malformed lines.

Design, so that 5 million lines stay cheap:

* time advances one minute at a time; each minute first creates the users who
  first touch the system in it, then runs the sessions due in it, then flushes
  the lines whose delivery time falls in it (in generation order, which is
  roughly but not exactly time order);
* every line is serialised when it is scheduled, so the buffer holds bytes for
  at most a few hours ahead; a returning user waits for their next session as
  one packed int, never as a pile of future events;
* facts whose ``ts`` falls after the last day are dropped (the run is a window
  onto a longer life), except the first report of in-run ad spend, delayed
  deliveries and retries, which are flushed at the end.

Everything random comes from ``random.Random(cfg.seed)``: the same config
gives the same bytes.

The modules, in the order a line is made: ``config`` (what to generate),
``tables`` (the shape of the business), ``world`` (campaigns, plans, fx),
``users`` and ``traffic`` (the state of a run), ``arrivals``, ``sessions``,
``money`` and ``hourly`` (what happens), ``malformed`` (dirt), ``stream``
(the minute loop and delivery), ``sizing`` (``events`` to users) and ``live``
(the same world at the wall clock, for ``reelroi demo``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from random import Random

from reelroi.generator.config import GeneratorConfig
from reelroi.generator.encoding import Clock
from reelroi.generator.live import live
from reelroi.generator.sizing import fixed_lines, lines_per_user
from reelroi.generator.stream import run
from reelroi.generator.traffic import Traffic
from reelroi.generator.world import World

__all__ = ["GeneratorConfig", "generate", "live"]


def generate(cfg: GeneratorConfig) -> Iterator[bytes]:
    """Yields JSON lines (bytes, each ending in b"\\n")."""
    if cfg.days < 1:
        raise ValueError("days must be >= 1")
    if cfg.campaigns < 0 or cfg.plans < 0 or cfg.users_per_day < 0:
        raise ValueError("campaigns, plans and users_per_day must be >= 0")
    if not (0 <= cfg.malformed_share < 0.5 and 0 <= cfg.duplicate_share < 0.5):
        raise ValueError("malformed_share and duplicate_share must be in [0, 0.5)")
    if not 0 <= cfg.named_share <= 1:
        raise ValueError("named_share must be in [0, 1]")
    return _generate(cfg)


def _generate(cfg: GeneratorConfig) -> Iterator[bytes]:
    clock = Clock()
    rng = Random(cfg.seed)
    world = World(cfg, rng, clock)
    users_per_day = float(cfg.users_per_day)
    if cfg.events is not None:
        # Lines = fixed + users * per-user, then duplicates and malformed on top.
        target = cfg.events * (1 - cfg.duplicate_share - cfg.malformed_share)
        day_factor = sum(
            (1.12 if (cfg.start_date + timedelta(days=d)).weekday() >= 5 else 1.0) for d in range(cfg.days)
        )
        per_user = lines_per_user(cfg)
        fixed = fixed_lines(cfg, world, target / per_user / cfg.days)
        users_per_day = max(1.0, (target - fixed) / per_user / day_factor)
    yield from run(Traffic(cfg, world, rng, users_per_day))
