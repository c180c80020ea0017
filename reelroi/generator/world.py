"""The world a run happens in: campaigns, creator plans, fx, and the configuration events before it."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from itertools import count
from random import Random
from typing import Any

from reelroi.generator.config import GeneratorConfig
from reelroi.generator.encoding import Clock, local_midnight, price_point
from reelroi.generator.tables import (
    APPS,
    COMMISSION_RATES,
    DAY,
    DIURNAL,
    FX_BASE,
    FX_DIGITS,
    MARKETS,
    NO_FX,
    PLATFORM_CN,
    PLATFORM_CYCLE,
    PLATFORM_PREFIX,
    PRICES,
    SGD_RATE,
    SLOTS,
    TITLES_CN,
    TITLES_EN,
    sampled,
    weighted,
)


class Source:
    """A campaign or a creator promotion plan that clicks (and impressions) point to."""

    __slots__ = ("cpa", "drama", "fmt", "hosts", "id", "key", "overseas", "platform", "weight")

    def __init__(
        self,
        key: str,
        id_: str,
        drama: str,
        platform: str,
        fmt: Callable[[int], str],
        hosts: tuple[tuple[str, str], ...],
        overseas: bool,
        weight: float,
        cpa: float,
    ):
        self.key, self.id, self.drama, self.platform = key, id_, drama, platform
        self.fmt, self.hosts, self.overseas, self.weight, self.cpa = fmt, hosts, overseas, weight, cpa


def host_table(pairs: list[tuple[str, float]], overseas: bool = False) -> tuple[tuple[str, str], ...]:
    rows = []
    for host, w in pairs:
        apps = APPS["app_overseas" if overseas and host == "app" else host]
        rows += [((host, app), w / len(apps)) for app in apps]
    return weighted(rows)


HOSTS = {
    "douyin": host_table([("douyin", 55), ("wechat", 45)]),
    "kuaishou": host_table([("wechat", 85), ("app", 15)]),
    "tencent": host_table([("wechat", 100)]),
    "tiktok": host_table([("app", 100)], overseas=True),
    "other": host_table([("wechat", 60), ("app", 40)]),
    "plan_douyin": host_table([("douyin", 80), ("wechat", 20)]),
    "plan_kuaishou": host_table([("wechat", 100)]),
    "organic": host_table([("wechat", 60), ("douyin", 30), ("app", 10)]),
    "organic_overseas": host_table([("app", 100)], overseas=True),
}


class World:
    """Campaigns, plans, fx and the pre-run configuration events (built once, small)."""

    def __init__(self, cfg: GeneratorConfig, rng: Random, clock: Clock) -> None:
        self.clock = clock
        self.start = local_midnight(cfg.start_date)
        n_dramas = max(3, min(999, (cfg.campaigns + cfg.plans) // 3))
        self.dramas = tuple(f"dr{i + 1:03d}" for i in range(n_dramas))
        n_buyers = max(1, cfg.campaigns // 6)
        n_creators = max(1, round(cfg.plans / 3))
        self.config: list[tuple[int, dict[str, Any]]] = []
        ids = count(1)

        self.campaigns: list[Source] = []
        self.campaign_cfg: dict[str, dict[str, Any]] = {}
        for i in range(cfg.campaigns):
            platform = PLATFORM_CYCLE[i % len(PLATFORM_CYCLE)]
            overseas = platform == "tiktok"
            src = Source(
                "campaign_id",
                f"{PLATFORM_PREFIX[platform]}{i + 1:04d}",
                rng.choice(self.dramas),
                platform,
                clock.utc if overseas or (platform == "other" and i % 2) else clock.local,
                HOSTS[platform],
                overseas,
                rng.lognormvariate(0, 0.8),
                rng.uniform(4.5, 9.5),
            )
            self.campaigns.append(src)
            if cfg.campaigns >= 10 and i == cfg.campaigns - 1:
                continue  # one campaign nobody configured: its clicks and spend still count
            ev: dict[str, Any] = {
                "type": "campaign",
                "event_id": f"cfg-{next(ids)}",
                "ts": "",
                "campaign_id": src.id,
                "platform": platform,
                "drama_id": src.drama,
                "buyer_id": f"b{rng.randrange(n_buyers) + 1:02d}",
            }
            if rng.random() < cfg.named_share:
                ev["name"] = self._campaign_name(rng, platform, i)
            if rng.random() < 0.3:
                ev["schema_version"] = 1
            t = self.start - rng.randrange(1, 21) * DAY + rng.randrange(9 * 3600, 19 * 3600)
            ev["ts"] = clock.local(t)
            self.campaign_cfg[src.id] = ev
            self.config.append((t, ev))

        self.plans: list[Source] = []
        self.plan_cfg: dict[str, dict[str, Any]] = {}
        for i in range(cfg.plans):
            platform = "douyin" if rng.random() < 0.7 else "kuaishou"
            src = Source(
                "plan_id",
                f"pl{i + 1:04d}",
                rng.choice(self.dramas),
                platform,
                clock.local,
                HOSTS["plan_" + platform],
                False,
                rng.lognormvariate(0, 0.9),
                0.0,
            )
            self.plans.append(src)
            if cfg.plans >= 5 and i == cfg.plans - 1:
                continue  # a plan that was never configured: sources users, earns no commission
            t = self.start - rng.randrange(1, 15) * DAY + rng.randrange(10 * 3600, 22 * 3600)
            ev = {
                "type": "promotion_plan",
                "event_id": f"cfg-{next(ids)}",
                "ts": clock.local(t),
                "plan_id": src.id,
                "creator_id": f"cr{i % n_creators + 1:03d}",
                "drama_id": src.drama,
                "commission_rate": rng.choice(COMMISSION_RATES),
            }
            self.plan_cfg[src.id] = ev
            self.config.append((t, ev))

        # fx: rates effective on and before start, published the morning before;
        # one correction re-emitted later; a (harmless) CNY rate; SGD from day 2.
        self.fx = dict(FX_BASE)
        for back in (30, 7, 1, 0):
            eff = cfg.start_date - timedelta(days=back)
            t = local_midnight(eff) - DAY + 9 * 3600 + 15 * 60
            for cur in FX_BASE:
                self.config.append((t, self.fx_event(f"fx-{next(ids)}", t, cur, eff, self.walk(rng, cur))))
        t = self.start - DAY + 9 * 3600 + 15 * 60
        self.config.append((t, self.fx_event(f"fx-{next(ids)}", t, "CNY", cfg.start_date - timedelta(30), 1.0)))
        t = self.start - DAY + 15 * 3600 + 2 * 60
        eff = cfg.start_date - timedelta(days=1)
        self.config.append((t, self.fx_event(f"fx-{next(ids)}", t, "USD", eff, self.fx["USD"] * 1.0004)))
        self.fx["SGD"] = SGD_RATE
        self.next_id = next(ids)

        self.campaign_pick: tuple[Source, ...] = (
            weighted([(c, c.weight) for c in self.campaigns]) if self.campaigns else ()
        )
        self.plan_pick: tuple[Source, ...] = weighted([(p, p.weight) for p in self.plans]) if self.plans else ()
        # Seconds after local midnight, distributed like the traffic.
        self.time_of_day = tuple(
            h * 3600 + rng.randrange(3600) for h in weighted(list(zip(range(24), DIURNAL, strict=True)))
        )
        # Delays in seconds.
        self.click_lag = sampled(rng, [(70, 3, 120), (20, 120, 3600), (8, 3600, 8 * 3600), (2, 8 * 3600, 6 * DAY)])
        self.vt_lag = sampled(rng, [(75, 60, 3600), (17, 3600, 20 * 3600), (8, 25 * 3600, 40 * 3600)])
        self.first_money = sampled(rng, [(80, 20, 900), (20, 900, 3 * 3600)])
        self.money_gap = sampled(rng, [(75, 25, 400), (25, 400, 2400)])
        self.refund_lag = sampled(rng, [(50, 600, DAY), (50, DAY, 7 * DAY)])
        self.late = sampled(rng, [(80, 30, 600), (20, 600, 3600)])
        self.spend_report = sampled(rng, [(100, 180, 2400)])
        self.retry_minutes = sampled(rng, [(70, 1, 4), (25, 4, 60), (5, 120, 720)])
        self.restate_lag = sampled(rng, [(60, 2 * 3600, 12 * 3600), (40, 12 * 3600, 30 * 3600)])
        self.revenue = {cur: self._iaa_table(rng, cur) for cur in PRICES}
        self.prices = {
            cur: {
                kind: weighted([(price_point(p), len(ps) - j + 1) for j, p in enumerate(ps)])
                for kind, ps in kinds.items()
            }
            for cur, kinds in PRICES.items()
        }

    @staticmethod
    def _campaign_name(rng: Random, platform: str, i: int) -> str:
        if platform == "tiktok" or (platform == "other" and rng.random() < 0.5):
            return f"{rng.choice(TITLES_EN)} | {platform.title()} {rng.choice(MARKETS)} | v{i % 7 + 1}"
        return f"{rng.choice(TITLES_CN)}-{PLATFORM_CN[platform]}-{rng.choice('ABCDEFGH')}{i % 30 + 1:02d}"

    def walk(self, rng: Random, cur: str) -> float:
        self.fx[cur] *= 1 + rng.gauss(0, 0.0015)
        return self.fx[cur]

    def fx_event(self, eid: str, t: int, cur: str, eff: date, rate: float) -> dict[str, Any]:
        return {
            "type": "fx_rate",
            "event_id": eid,
            "ts": self.clock.utc(t),
            "currency": cur,
            "rate": f"{rate:.{FX_DIGITS.get(cur, 0)}f}",
            "effective_date": eff.isoformat(),
        }

    def _iaa_table(self, rng: Random, cur: str) -> tuple[str, ...]:
        """Estimated revenue of one rewarded ad view (eCPM-like), in cur."""
        if cur == "CNY":
            vals = [rng.lognormvariate(math.log(0.035), 0.5) for _ in range(SLOTS)]
        else:
            cny_per_unit = {**FX_BASE, "SGD": SGD_RATE, NO_FX: 0.2}[cur]
            vals = [rng.lognormvariate(math.log(0.012), 0.5) * FX_BASE["USD"] / cny_per_unit for _ in range(SLOTS)]
        return tuple(f"{min(v, 9.0):.4f}" for v in vals)
