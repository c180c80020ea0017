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
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import chain, count
from random import Random
from typing import Any

import orjson

__all__ = ["GeneratorConfig", "generate"]

# Not OPT_APPEND_NEWLINE: orjson leaves its ~4 KiB output buffer allocated behind every
# bytes object it returns; "+ b'\n'" copies the line into an object of its own size.
_dumps = orjson.dumps


def _line(ev: Any) -> bytes:
    return _dumps(ev) + b"\n"


_LOCAL = timezone(timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
_DAY = 86_400
_T = 1024  # size of every weighted lookup table: pick with tbl[int(rnd() * _T)]


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``events`` (when set) overrides ``users_per_day``."""

    seed: int = 42
    start_date: date = date(2026, 11, 1)  # first local day (Asia/Shanghai)
    days: int = 1
    campaigns: int = 40  # across platforms douyin/kuaishou/tencent/tiktok/other
    plans: int = 15  # creator promotion plans (several plans per creator)
    events: int | None = None  # if set, scale users so the output has about this many lines
    users_per_day: int = 20_000
    malformed_share: float = 0.002  # share of malformed lines
    duplicate_share: float = 0.01  # share of exact duplicate lines (producer retries)


# --------------------------------------------------------------------------- tables


def _weighted(pairs: list[tuple[Any, float]]) -> tuple[Any, ...]:
    """A lookup table of _T slots in which each item fills a share of its weight."""
    total = sum(w for _, w in pairs)
    out: list[Any] = []
    acc = 0.0
    for item, w in pairs:
        acc += w
        out.extend([item] * (round(acc / total * _T) - len(out)))
    return tuple(out)


def _sampled(rng: Random, parts: list[tuple[float, float, float]]) -> tuple[int, ...]:
    """_T integer samples from a mixture of log-uniform ranges (weight, low, high)."""
    total = sum(p[0] for p in parts)
    out: list[int] = []
    for w, lo, hi in parts:
        n = round(w / total * _T) if len(out) + round(w / total * _T) <= _T else _T - len(out)
        out.extend(int(math.exp(rng.uniform(math.log(lo), math.log(hi)))) for _ in range(n))
    out.extend([out[-1]] * (_T - len(out)))
    rng.shuffle(out)
    return tuple(out)


# Local hour weights: short dramas are watched in the evening and at lunch.
# fmt: off
_DIURNAL = (2.6, 1.7, 1.1, 0.8, 0.7, 0.8, 1.4, 2.4, 3.2, 3.6, 3.8, 4.2,
            4.8, 4.6, 4.2, 4.2, 4.4, 4.8, 5.4, 6.3, 7.2, 7.6, 7.0, 4.9)
# fmt: on

# Platform of campaign i is _PLATFORM_CYCLE[i % 20]: 40% douyin, 20% kuaishou,
# 20% tencent, 15% tiktok, 5% other, and the first five campaigns cover all five.
# fmt: off
_PLATFORM_CYCLE = ("douyin", "kuaishou", "tencent", "tiktok", "douyin", "other", "douyin",
                   "kuaishou", "tencent", "douyin", "tiktok", "douyin", "kuaishou", "tencent",
                   "douyin", "tiktok", "douyin", "kuaishou", "tencent", "douyin")
# fmt: on
_PLATFORM_PREFIX = {"douyin": "dy", "kuaishou": "ks", "tencent": "gdt", "tiktok": "tt", "other": "ot"}
_PLATFORM_CN = {"douyin": "抖音", "kuaishou": "快手", "tencent": "广点通", "tiktok": "TikTok", "other": "其他"}

_TITLES_CN = (
    "闪婚后，豪门老公宠上天",
    "战神归来",
    "重生之千金复仇",
    "离婚后她惊艳全球",
    "我的总裁大人",
    "神医下山",
    "回到八零做首富",
    "穿书后我成了恶毒女配",
    "天降萌宝：爹地请接招",
    "龙王殿",
)
_TITLES_EN = (
    "The CEO's Secret Bride",
    "Return of the War God",
    "Reborn to Revenge",
    "My Billionaire Husband",
    "The Divine Doctor",
    "The Alpha's Rejected Mate",
)

_MARKETS = ("US", "JP", "TW", "HK", "SEA", "EU")

_APPS = {
    "wechat": ("wx5c9a1f3e7b2d4a60", "wxa1b2c3d4e5f60718"),
    "douyin": ("tt8d3f2a1b9c7e5d40", "tt1a2b3c4d5e6f7081"),
    "app": ("com.reelroi.shorts", "id6443211234"),
    "app_overseas": ("com.reelroi.global", "id6450098765"),
}

# Reporting-currency (CNY) units per unit, around late 2026.
_FX_BASE = {"USD": 7.1236, "JPY": 0.047105, "HKD": 0.91348, "TWD": 0.22081, "EUR": 7.6802, "KRW": 0.0051873}
_FX_DIGITS = {"USD": 4, "JPY": 6, "HKD": 5, "TWD": 5, "EUR": 4, "KRW": 7, "SGD": 4}
_SGD_RATE = 5.3114  # SGD launches the day after start: earlier SGD money has no rate
_NO_FX = "THB"  # never gets a rate

_OVERSEAS_CUR = _weighted(
    [("USD", 62), ("JPY", 8), ("HKD", 6), ("TWD", 8), ("EUR", 5), ("KRW", 4), ("SGD", 4), (_NO_FX, 3)]
)
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "TWD"})

# Price points per currency and kind, cheapest first (weighted towards cheap).
_PRICES: dict[str, dict[str, tuple[str, ...]]] = {
    "CNY": {
        "unlock": ("1.90", "2.90", "4.90", "9.90"),
        "recharge": ("9.90", "19.90", "29.90", "49.90", "99.00", "199.00"),
        "subscription": ("19.90", "39.90", "68.00", "128.00", "298.00"),
    },
    "USD": {
        "unlock": ("0.99", "1.99", "2.99"),
        "recharge": ("4.99", "9.99", "19.99", "49.99", "99.99"),
        "subscription": ("4.99", "9.99", "19.99", "59.99"),
    },
    "JPY": {
        "unlock": ("160", "300", "480"),
        "recharge": ("700", "1500", "3000", "10000"),
        "subscription": ("1000", "2900", "8800"),
    },
    "HKD": {
        "unlock": ("7.80", "15.00"),
        "recharge": ("38.00", "78.00", "158.00", "388.00"),
        "subscription": ("38.00", "78.00", "388.00"),
    },
    "TWD": {"unlock": ("30", "60"), "recharge": ("150", "300", "990", "1990"), "subscription": ("150", "290", "990")},
    "EUR": {
        "unlock": ("0.99", "1.99"),
        "recharge": ("4.99", "9.99", "19.99", "49.99"),
        "subscription": ("4.99", "9.99", "49.99"),
    },
    "KRW": {"unlock": ("1400", "2900"), "recharge": ("6500", "14000", "29000"), "subscription": ("6500", "14000")},
    "SGD": {"unlock": ("1.38", "2.78"), "recharge": ("6.98", "13.98", "28.98"), "subscription": ("6.98", "13.98")},
    _NO_FX: {
        "unlock": ("35.00", "69.00"),
        "recharge": ("179.00", "349.00", "699.00"),
        "subscription": ("179.00", "349.00"),
    },
}
_KIND = _weighted([("unlock", 45), ("recharge", 40), ("subscription", 15)])
_COMMISSION_RATES = ("0.30", "0.25", "0.35", "0.20", "0.4", "0.15", "0.5")

# Chance of coming back on day k after acquisition (times the user's engagement).
_RETURN = (0.0, 0.36, 0.26, 0.21, 0.18, 0.16, 0.14, 0.13) + (0.07,) * 7 + (0.035,) * 16
_ENGAGEMENT = _weighted([(0, 40), (1, 40), (2, 20)])  # indexes into _ENG_LEVELS
_IAA_D0 = _weighted([(1, 20), (2, 20), (3, 18), (4, 14), (5, 10), (6, 8), (8, 6), (12, 4)])
_IAA_LATER = _weighted([(1, 35), (2, 28), (3, 17), (4, 10), (6, 7), (9, 3)])
_PAYMENTS = _weighted([(1, 62), (2, 26), (3, 9), (4, 3)])
_NOISE_DEVICES = _weighted([(0, 38), (1, 42), (2, 15), (3, 5)])
_NOISE_IMPS = _weighted([(1, 35), (2, 30), (3, 20), (4, 15)])
_PRE_CLICK_IMPS = _weighted([(0, 15), (1, 35), (2, 30), (3, 20)])
_VT_IMPS = _weighted([(1, 45), (2, 35), (3, 20)])

_CURRENCIES = tuple(_PRICES)
_CURRENCY_INDEX = {c: i for i, c in enumerate(_CURRENCIES)}
_HOSTAPPS = tuple(("app" if key == "app_overseas" else key, app) for key, apps in _APPS.items() for app in apps)
_HOSTAPP_INDEX = {pair: i for i, pair in enumerate(_HOSTAPPS)}
_ENG_LEVELS = (0.35, 1.0, 1.9)

_MINSEC_LOCAL = tuple(f"{m:02d}:{s:02d}+08:00" for m in range(60) for s in range(60))
_MINSEC_UTC = tuple(f"{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))


class _Clock:
    """RFC 3339 formatting of epoch seconds, cached per hour (the hot path)."""

    def __init__(self) -> None:
        self._local: dict[int, str] = {}
        self._utc: dict[int, str] = {}

    def local(self, t: int) -> str:
        h = t // 3600
        p = self._local.get(h)
        if p is None:
            p = self._local[h] = datetime.fromtimestamp(h * 3600, _LOCAL).strftime("%Y-%m-%dT%H:")
        return p + _MINSEC_LOCAL[t - h * 3600]

    def utc(self, t: int) -> str:
        h = t // 3600
        p = self._utc.get(h)
        if p is None:
            p = self._utc[h] = datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H:")
        return p + _MINSEC_UTC[t - h * 3600]


def _local_midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=_LOCAL).timestamp())


def _device(n: int) -> str:
    """A device id that looks random but is unique per n (odd multiplier: a bijection mod 2^40)."""
    return f"d{(n * 0x9E3779B1) & 0xFFFFFFFFFF:010x}"


def _money(s: str) -> tuple[str, int, float | int]:
    """(decimal string, hundredths, JSON-number form) of a price point."""
    cents = round(float(s) * 100)
    num: float | int = cents // 100 if cents % 100 == 0 else float(s)
    return s, cents, num


def _cents_str(cents: int, cur: str) -> str:
    if cur in _ZERO_DECIMAL:
        return str(max(1, cents // 100))
    return f"{cents // 100}.{cents % 100:02d}"


# --------------------------------------------------------------------------- world


class _Source:
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


def _hosts(pairs: list[tuple[str, float]], overseas: bool = False) -> tuple[tuple[str, str], ...]:
    rows = []
    for host, w in pairs:
        apps = _APPS["app_overseas" if overseas and host == "app" else host]
        rows += [((host, app), w / len(apps)) for app in apps]
    return _weighted(rows)


_HOSTS = {
    "douyin": _hosts([("douyin", 55), ("wechat", 45)]),
    "kuaishou": _hosts([("wechat", 85), ("app", 15)]),
    "tencent": _hosts([("wechat", 100)]),
    "tiktok": _hosts([("app", 100)], overseas=True),
    "other": _hosts([("wechat", 60), ("app", 40)]),
    "plan_douyin": _hosts([("douyin", 80), ("wechat", 20)]),
    "plan_kuaishou": _hosts([("wechat", 100)]),
    "organic": _hosts([("wechat", 60), ("douyin", 30), ("app", 10)]),
    "organic_overseas": _hosts([("app", 100)], overseas=True),
}


class _World:
    """Campaigns, plans, fx and the pre-run configuration events (built once, small)."""

    def __init__(self, cfg: GeneratorConfig, rng: Random, clock: _Clock) -> None:
        self.clock = clock
        self.start = _local_midnight(cfg.start_date)
        n_dramas = max(3, min(999, (cfg.campaigns + cfg.plans) // 3))
        self.dramas = tuple(f"dr{i + 1:03d}" for i in range(n_dramas))
        n_buyers = max(1, cfg.campaigns // 6)
        n_creators = max(1, round(cfg.plans / 3))
        self.config: list[tuple[int, dict[str, Any]]] = []
        ids = count(1)

        self.campaigns: list[_Source] = []
        self.campaign_cfg: dict[str, dict[str, Any]] = {}
        for i in range(cfg.campaigns):
            platform = _PLATFORM_CYCLE[i % len(_PLATFORM_CYCLE)]
            overseas = platform == "tiktok"
            src = _Source(
                "campaign_id",
                f"{_PLATFORM_PREFIX[platform]}{i + 1:04d}",
                rng.choice(self.dramas),
                platform,
                clock.utc if overseas or (platform == "other" and i % 2) else clock.local,
                _HOSTS[platform],
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
            if rng.random() < 0.9:
                ev["name"] = self._campaign_name(rng, platform, i)
            if rng.random() < 0.3:
                ev["schema_version"] = 1
            t = self.start - rng.randrange(1, 21) * _DAY + rng.randrange(9 * 3600, 19 * 3600)
            ev["ts"] = clock.local(t)
            self.campaign_cfg[src.id] = ev
            self.config.append((t, ev))

        self.plans: list[_Source] = []
        self.plan_cfg: dict[str, dict[str, Any]] = {}
        for i in range(cfg.plans):
            platform = "douyin" if rng.random() < 0.7 else "kuaishou"
            src = _Source(
                "plan_id",
                f"pl{i + 1:04d}",
                rng.choice(self.dramas),
                platform,
                clock.local,
                _HOSTS["plan_" + platform],
                False,
                rng.lognormvariate(0, 0.9),
                0.0,
            )
            self.plans.append(src)
            if cfg.plans >= 5 and i == cfg.plans - 1:
                continue  # a plan that was never configured: sources users, earns no commission
            t = self.start - rng.randrange(1, 15) * _DAY + rng.randrange(10 * 3600, 22 * 3600)
            ev = {
                "type": "promotion_plan",
                "event_id": f"cfg-{next(ids)}",
                "ts": clock.local(t),
                "plan_id": src.id,
                "creator_id": f"cr{i % n_creators + 1:03d}",
                "drama_id": src.drama,
                "commission_rate": rng.choice(_COMMISSION_RATES),
            }
            self.plan_cfg[src.id] = ev
            self.config.append((t, ev))

        # fx: rates effective on and before start, published the morning before;
        # one correction re-emitted later; a (harmless) CNY rate; SGD from day 2.
        self.fx = dict(_FX_BASE)
        for back in (30, 7, 1, 0):
            eff = cfg.start_date - timedelta(days=back)
            t = _local_midnight(eff) - _DAY + 9 * 3600 + 15 * 60
            for cur in _FX_BASE:
                self.config.append((t, self.fx_event(f"fx-{next(ids)}", t, cur, eff, self.walk(rng, cur))))
        t = self.start - _DAY + 9 * 3600 + 15 * 60
        self.config.append((t, self.fx_event(f"fx-{next(ids)}", t, "CNY", cfg.start_date - timedelta(30), 1.0)))
        t = self.start - _DAY + 15 * 3600 + 2 * 60
        eff = cfg.start_date - timedelta(days=1)
        self.config.append((t, self.fx_event(f"fx-{next(ids)}", t, "USD", eff, self.fx["USD"] * 1.0004)))
        self.fx["SGD"] = _SGD_RATE
        self.next_id = next(ids)

        self.campaign_pick: tuple[_Source, ...] = (
            _weighted([(c, c.weight) for c in self.campaigns]) if self.campaigns else ()
        )
        self.plan_pick: tuple[_Source, ...] = _weighted([(p, p.weight) for p in self.plans]) if self.plans else ()
        # Seconds after local midnight, distributed like the traffic.
        self.time_of_day = tuple(
            h * 3600 + rng.randrange(3600) for h in _weighted(list(zip(range(24), _DIURNAL, strict=True)))
        )
        # Delays in seconds.
        self.click_lag = _sampled(rng, [(70, 3, 120), (20, 120, 3600), (8, 3600, 8 * 3600), (2, 8 * 3600, 6 * _DAY)])
        self.vt_lag = _sampled(rng, [(75, 60, 3600), (17, 3600, 20 * 3600), (8, 25 * 3600, 40 * 3600)])
        self.first_money = _sampled(rng, [(80, 20, 900), (20, 900, 3 * 3600)])
        self.money_gap = _sampled(rng, [(75, 25, 400), (25, 400, 2400)])
        self.refund_lag = _sampled(rng, [(50, 600, _DAY), (50, _DAY, 7 * _DAY)])
        self.late = _sampled(rng, [(80, 30, 600), (20, 600, 3600)])
        self.spend_report = _sampled(rng, [(100, 180, 2400)])
        self.retry_minutes = _sampled(rng, [(70, 1, 4), (25, 4, 60), (5, 120, 720)])
        self.restate_lag = _sampled(rng, [(60, 2 * 3600, 12 * 3600), (40, 12 * 3600, 30 * 3600)])
        self.revenue = {cur: self._iaa_table(rng, cur) for cur in _PRICES}
        self.prices = {
            cur: {
                kind: _weighted([(_money(p), len(ps) - j + 1) for j, p in enumerate(ps)]) for kind, ps in kinds.items()
            }
            for cur, kinds in _PRICES.items()
        }

    @staticmethod
    def _campaign_name(rng: Random, platform: str, i: int) -> str:
        if platform == "tiktok" or (platform == "other" and rng.random() < 0.5):
            return f"{rng.choice(_TITLES_EN)} | {platform.title()} {rng.choice(_MARKETS)} | v{i % 7 + 1}"
        return f"{rng.choice(_TITLES_CN)}-{_PLATFORM_CN[platform]}-{rng.choice('ABCDEFGH')}{i % 30 + 1:02d}"

    def walk(self, rng: Random, cur: str) -> float:
        self.fx[cur] *= 1 + rng.gauss(0, 0.0015)
        return self.fx[cur]

    def fx_event(self, eid: str, t: int, cur: str, eff: date, rate: float) -> dict[str, Any]:
        return {
            "type": "fx_rate",
            "event_id": eid,
            "ts": self.clock.utc(t),
            "currency": cur,
            "rate": f"{rate:.{_FX_DIGITS.get(cur, 0)}f}",
            "effective_date": eff.isoformat(),
        }

    def _iaa_table(self, rng: Random, cur: str) -> tuple[str, ...]:
        """Estimated revenue of one rewarded ad view (eCPM-like), in cur."""
        if cur == "CNY":
            vals = [rng.lognormvariate(math.log(0.035), 0.5) for _ in range(_T)]
        else:
            cny_per_unit = {**_FX_BASE, "SGD": _SGD_RATE, _NO_FX: 0.2}[cur]
            vals = [rng.lognormvariate(math.log(0.012), 0.5) * _FX_BASE["USD"] / cny_per_unit for _ in range(_T)]
        return tuple(f"{min(v, 9.0):.4f}" for v in vals)


class _User:
    """A user during a session. Between sessions a user waits as one packed int (``pack``),
    so that a million returning users cost tens of megabytes, not hundreds."""

    __slots__ = (
        "acq_day",
        "app",
        "cur",
        "day",
        "device",
        "drama",
        "eng",
        "episode",
        "fmt",
        "host",
        "hostapp",
        "iaa",
        "late_redirect",
        "n",
        "paid",
        "redirect",
        "uid",
        "utc",
    )

    def __init__(
        self, n: int, clock: _Clock, utc: bool, cur: int, drama: int, hostapp: int, eng: int, iaa: bool
    ) -> None:
        self.n, self.uid, self.device = n, f"u{n}", _device(n)
        self.utc, self.fmt = utc, clock.utc if utc else clock.local
        self.cur = _CURRENCIES[cur]
        self.drama = f"dr{drama + 1:03d}"
        self.hostapp = hostapp
        self.host, self.app = _HOSTAPPS[hostapp]
        self.eng = eng  # index into _ENG_LEVELS
        self.iaa = iaa  # watches rewarded ads
        self.acq_day = 0  # run day of the acquisition
        self.day = 0  # days since acquisition of the current session
        self.paid = False
        self.late_redirect = False  # money-only user whose redirect comes on a later day
        self.episode = 1
        self.redirect: dict[str, Any] | None = None  # first-session redirect, built at arrival

    # Bit layout, low to high: second in the minute of the next session (6), day (5), flags
    # utc/iaa/paid/late_redirect (4), engagement (2), currency (4), host+app (4), episode (10),
    # drama (10), acquisition day (16), then n.
    def pack(self, second: int) -> int:
        code = ((self.n << 16 | self.acq_day) << 10 | int(self.drama[2:]) - 1) << 10 | min(self.episode, 1023)
        code = ((code << 4 | self.hostapp) << 4 | _CURRENCY_INDEX[self.cur]) << 2 | self.eng
        flags = self.utc << 3 | self.iaa << 2 | self.paid << 1 | self.late_redirect
        return ((code << 4 | flags) << 5 | self.day) << 6 | second

    @classmethod
    def unpack(cls, code: int, clock: _Clock) -> tuple[_User, int]:
        """The user and the second in the minute of their session."""
        second, day, flags = code & 63, code >> 6 & 31, code >> 11 & 15
        eng, cur, hostapp = code >> 15 & 3, code >> 17 & 15, code >> 21 & 15
        episode, drama, acq_day, n = code >> 25 & 1023, code >> 35 & 1023, code >> 45 & 0xFFFF, code >> 61
        u = cls(n, clock, bool(flags & 8), cur, drama, hostapp, eng, bool(flags & 4))
        u.paid, u.late_redirect = bool(flags & 2), bool(flags & 1)
        u.acq_day, u.day, u.episode = acq_day, day, episode
        return u, second


# --------------------------------------------------------------------------- traffic


class _Traffic:
    """The minute-by-minute simulation. Lines go to per-minute delivery buckets."""

    def __init__(self, cfg: GeneratorConfig, world: _World, rng: Random, users_per_day: float) -> None:
        self.cfg, self.w, self.rng = cfg, world, rng
        self.rnd = rng.random
        self.clock = world.clock
        self.ids = count(world.next_id)
        self.horizon = world.start + cfg.days * _DAY
        self.users_per_day = users_per_day
        self.buckets: defaultdict[int, list[bytes]] = defaultdict(list)
        self.firsts: defaultdict[int, list[tuple[int, _User]]] = defaultdict(list)  # D0 sessions due
        self.returns: defaultdict[int, list[int]] = defaultdict(list)  # packed users due back
        self.cur = 0  # minute being generated; nothing is scheduled before it
        self.stale: list[tuple[str, str]] = []  # (click_id, device_id) of clicks > 7 days old
        self.emitted = 0
        self.next_dup = self._gap(cfg.duplicate_share)
        self.next_bad = self._gap(cfg.malformed_share)
        self.plan_share = 0.25 if world.plans else 0.0
        total_w = sum(c.weight for c in world.campaigns) or 1.0
        # Daily budget in CNY: paid users times a per-campaign cost per user.
        self.budget = {c.id: users_per_day * 0.72 * c.cpa * c.weight / total_w for c in world.campaigns}

    # ---- plumbing

    def _gap(self, p: float) -> int:
        if p <= 0:
            return 1 << 62
        return self.emitted + 1 + int(math.log(1.0 - self.rnd()) / math.log1p(-p))

    def put(self, t: int, ev: dict[str, Any], delay: int = 0) -> None:
        """Schedule ev (ts t) for delivery at t + delay; facts after the run are dropped."""
        if t < self.horizon:
            m = (t + delay) // 60
            self.buckets[m if m > self.cur else self.cur].append(_dumps(ev) + b"\n")

    def put_always(self, t: int, ev: dict[str, Any]) -> None:
        m = t // 60
        self.buckets[m if m > self.cur else self.cur].append(_dumps(ev) + b"\n")

    def eid(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    def source(self) -> _Source | None:
        r = self.rnd()
        if r < self.plan_share:
            return self.w.plan_pick[int(r / self.plan_share * _T)]
        if self.w.campaign_pick:
            return self.w.campaign_pick[int(self.rnd() * _T)]
        return self.w.plan_pick[int(self.rnd() * _T)] if self.w.plan_pick else None

    def device(self) -> str:
        return _device(next(self.ids))

    def impression(self, t: int, src: _Source, dev: str) -> None:
        self.put(
            t,
            {
                "type": "impression",
                "event_id": self.eid("im-"),
                "ts": src.fmt(t),
                "campaign_id": src.id,
                "device_id": dev,
            },
            self.w.late[int(self.rnd() * _T)] if self.rnd() < 0.015 else 0,
        )

    def click(self, t: int, src: _Source, dev: str) -> tuple[str, int]:
        """Impressions before a campaign click, then the click; returns (click_id, its ts)."""
        rnd = self.rnd
        if src.key == "campaign_id":
            for _ in range(_PRE_CLICK_IMPS[int(rnd() * _T)]):
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
            self.w.late[int(rnd() * _T)] if rnd() < 0.015 else 0,
        )
        return cid, t

    # ---- arrivals: whoever first touches the system at t

    def arrival(self, t: int) -> None:
        rnd, w = self.rnd, self.w
        self.noise(t)
        r = rnd()
        n = next(self.ids)
        dev = _device(n)
        src: _Source | None = None
        click_id: str | None = None
        redirect_dev: str | None = None
        lag = 0
        if r < 0.60:  # redirect carries a click_id
            src = self.source()
            if src is not None:
                click_id, t_click = self.click(t, src, dev)
                lag = t_click - t + w.click_lag[int(rnd() * _T)]
                r2 = rnd()
                if r2 < 0.025 and self.stale:  # a stale click (> 7 days): falls back to the device
                    click_id, _ = self.stale[int(rnd() * len(self.stale))]
                    redirect_dev = dev if rnd() < 0.5 else None
                elif r2 < 0.04:  # the click never reached us
                    click_id = f"k-lost-{next(self.ids):x}"
                    redirect_dev = dev if rnd() < 0.5 else None
                elif r2 < 0.34:  # SDKs that also pass a device, not always the clicking one
                    redirect_dev = dev if rnd() < 0.5 else self.device()
        elif r < 0.85:  # redirect carries only a device_id
            redirect_dev = dev
            r2 = rnd()
            if r2 < 0.55:  # the device clicked; sometimes twice, the later click wins
                src = self.source()
                if src is not None:
                    t_click = t
                    if rnd() < 0.12:
                        other = self.source()
                        if other is not None:
                            _, t_click = self.click(t, other, dev)
                            t_click += 60 + int(rnd() * 1200)
                    _, t_click = self.click(t_click, src, dev)
                    lag = t_click - t + w.click_lag[int(rnd() * _T)]
            elif r2 < 0.90 and w.campaign_pick:  # view-through: impressions, no click
                src = w.campaign_pick[int(rnd() * _T)]
                tt = t
                for _ in range(_VT_IMPS[int(rnd() * _T)]):
                    self.impression(tt, src, dev)
                    tt += 5 + int(rnd() * 300)
                lag = tt - t + w.vt_lag[int(rnd() * _T)]
        elif r < 0.995 and rnd() < 0.35:  # neither: organic, even though the device clicked
            src = self.source()
            if src is not None:
                _, t_click = self.click(t, src, dev)
                lag = t_click - t + w.click_lag[int(rnd() * _T)]
        user = self.new_user(n, src)
        if r >= 0.995:  # money but no redirect; for some the redirect comes on a later day
            user.late_redirect = rnd() < 0.3
            user.iaa = True
        else:
            ev: dict[str, Any] = {
                "type": "redirect",
                "event_id": "",
                "ts": "",
                "user_id": user.uid,
                "app_id": user.app,
                "host": user.host,
            }
            if click_id is not None:
                ev["click_id"] = click_id
            if redirect_dev is not None:
                ev["device_id"] = redirect_dev
            user.redirect = ev
        t_acq = t + lag
        user.acq_day = (t_acq - self.w.start) // _DAY
        if t_acq < self.horizon:
            self.firsts[t_acq // 60].append((t_acq, user))

    def noise(self, t: int) -> None:
        """Devices that see ads and never redirect, and clicks that bounce."""
        rnd, w = self.rnd, self.w
        if w.campaign_pick:
            for _ in range(_NOISE_DEVICES[int(rnd() * _T)]):
                src = w.campaign_pick[int(rnd() * _T)]
                dev = self.device()
                tt = t + int(rnd() * 600)
                for _ in range(_NOISE_IMPS[int(rnd() * _T)]):
                    self.impression(tt, src, dev)
                    tt += 3 + int(rnd() * 240)
        if rnd() < 0.25:
            bounced = self.source()
            if bounced is not None:
                self.click(t + int(rnd() * 300), bounced, self.device())

    def new_user(self, n: int, src: _Source | None) -> _User:
        rnd, dramas = self.rnd, len(self.w.dramas)
        if src is None:
            overseas = rnd() < 0.08
            hosts = _HOSTS["organic_overseas" if overseas else "organic"]
            drama = int(rnd() * dramas)
        else:
            overseas = src.overseas
            hosts = src.hosts
            drama = int(src.drama[2:]) - 1 if rnd() < 0.85 else int(rnd() * dramas)
        hostapp = _HOSTAPP_INDEX[hosts[int(rnd() * _T)]]
        cur = _OVERSEAS_CUR[int(rnd() * _T)] if overseas else "CNY"
        utc = rnd() < 0.9 if overseas else rnd() < 0.15
        return _User(
            n,
            self.clock,
            utc,
            _CURRENCY_INDEX[cur],
            drama,
            hostapp,
            _ENGAGEMENT[int(rnd() * _T)],
            rnd() < (0.35 if overseas else 0.45),
        )

    # ---- sessions: a user's visit, D0 at acquisition, later on return days

    def session(self, t: int, u: _User) -> None:
        rnd, w, fmt = self.rnd, self.w, u.fmt
        first = u.day == 0
        before = False  # a payment timestamped just before the redirect
        if first and u.redirect is not None:
            ev = u.redirect
            u.redirect = None
            ev["event_id"] = self.eid("rd-")
            ev["ts"] = fmt(t)
            r = rnd()
            if r < 0.004:  # the redirect is delivered late: the payment arrives first
                self.put(t, ev, 180 + int(rnd() * 1000))
                self.payment(t + 20 + int(rnd() * 60), u, u.drama)
            elif r < 0.006:
                before = True
                self.put(t, ev)
            else:
                self.put(t, ev, w.late[int(rnd() * _T)] if rnd() < 0.01 else 0)
        elif not first:
            r = rnd()
            if u.late_redirect:  # first redirect of a money-only user: rule 1 applies from now
                u.late_redirect = False
                self.put(
                    t,
                    {
                        "type": "redirect",
                        "event_id": self.eid("rd-"),
                        "ts": fmt(t),
                        "user_id": u.uid,
                        "app_id": u.app,
                        "host": u.host,
                    },
                )
            elif r < 0.05:  # back through a new ad click: the source must not change
                src = self.source()
                if src is not None:
                    dev = self.device()
                    cid, t_click = self.click(t, src, dev)
                    t = t_click + 5 + int(rnd() * 60)
                    self.put(
                        t,
                        {
                            "type": "redirect",
                            "event_id": self.eid("rd-"),
                            "ts": fmt(t),
                            "user_id": u.uid,
                            "app_id": u.app,
                            "host": u.host,
                            "click_id": cid,
                            "device_id": dev,
                        },
                    )
            elif r < 0.5:
                ev = {
                    "type": "redirect",
                    "event_id": self.eid("rd-"),
                    "ts": fmt(t),
                    "user_id": u.uid,
                    "app_id": u.app,
                    "host": u.host,
                }
                if rnd() < 0.3:
                    ev["device_id"] = u.device
                self.put(t, ev)
        drama = u.drama if rnd() < 0.9 else w.dramas[int(rnd() * len(w.dramas))]

        if u.iaa:
            tt = t
            revenue = w.revenue[u.cur]
            for _ in range((_IAA_D0 if first else _IAA_LATER)[int(rnd() * _T)]):
                tt += w.money_gap[int(rnd() * _T)]
                num = rnd() < 0.03
                rev = revenue[int(rnd() * _T)]
                self.put(
                    tt,
                    {
                        "type": "ad_unlock",
                        "event_id": self.eid("au-"),
                        "ts": fmt(tt),
                        "user_id": u.uid,
                        "drama_id": drama,
                        "revenue": float(rev) if num else rev,
                        "currency": u.cur,
                        "episode": u.episode,
                    },
                )
                u.episode += 1

        # Chance to pay in this session: D0 by region, later mostly returning payers.
        p = (0.07 if u.cur != "CNY" else 0.10) if first else (0.22 if u.paid else 0.025)
        if before or rnd() < p:
            tt = t - 5 - int(rnd() * 40) if before else t + w.first_money[int(rnd() * _T)]
            for _ in range(_PAYMENTS[int(rnd() * _T)]):
                self.payment(tt, u, drama)
                tt += w.money_gap[int(rnd() * _T)]

        k = u.day + 1
        midnight = w.start + u.acq_day * _DAY
        eng = _ENG_LEVELS[u.eng]
        while k < len(_RETURN) and midnight + k * _DAY < self.horizon:
            if rnd() < _RETURN[k] * eng:
                u.day = k
                tr = midnight + k * _DAY + w.time_of_day[int(rnd() * _T)]
                if tr < self.horizon:
                    self.returns[tr // 60].append(u.pack(tr % 60))
                return
            k += 1

    def due(self, m: int) -> None:
        """Run the sessions that start in minute m."""
        first = self.firsts.pop(m, None)
        if first:
            for t, u in first:
                self.session(t, u)
        back = self.returns.pop(m, None)
        if back:
            clock = self.clock
            for code in back:
                u, second = _User.unpack(code, clock)
                self.session(m * 60 + second, u)

    def payment(self, t: int, u: _User, drama: str) -> None:
        rnd, w = self.rnd, self.w
        kind = _KIND[int(rnd() * _T)]
        s, cents, num = w.prices[u.cur][kind][int(rnd() * _T)]
        order = f"o{next(self.ids)}"
        ev: dict[str, Any] = {
            "type": "payment",
            "event_id": self.eid("pay-"),
            "ts": u.fmt(t),
            "order_id": order,
            "user_id": u.uid,
            "drama_id": drama,
            "amount": num if rnd() < 0.04 else s,
            "currency": u.cur,
            "kind": kind,
        }
        if kind == "unlock":
            ev["episode"] = u.episode
            u.episode += 1
        self.put(t, ev)
        u.paid = True
        r = rnd()
        if r < 0.006:  # the payment provider re-sends its notification: same order, new event
            t2 = t + 1 + int(rnd() * 30)
            self.put(t2, dict(ev, event_id=self.eid("pay-"), ts=u.fmt(t2)))
        elif r < 0.026:
            self.refunds(t, order, cents, u)
        elif r < 0.028:  # somebody refunds an order that never reached us
            self.refund(t + w.refund_lag[int(rnd() * _T)], f"o{next(self.ids)}", cents, u.cur, u.fmt)

    def refunds(self, t: int, order: str, cents: int, u: _User) -> None:
        rnd, w = self.rnd, self.w
        tr = t + w.refund_lag[int(rnd() * _T)]
        r = rnd()
        if r < 0.55:  # full
            self.refund(tr, order, cents, u.cur, u.fmt)
        elif r < 0.85:  # partial, sometimes a second partial, which may go over
            part = max(1, int(cents * (0.2 + 0.6 * rnd())))
            if u.cur in _ZERO_DECIMAL:
                part = max(100, part - part % 100)
            self.refund(tr, order, part, u.cur, u.fmt)
            if rnd() < 0.3:
                rest = cents - part
                second = rest + 100 if rnd() < 0.3 else max(1, rest // 2)
                self.refund(tr + w.refund_lag[int(rnd() * _T)], order, second, u.cur, u.fmt)
        elif r < 0.92:  # asks for more than was paid
            self.refund(tr, order, cents + max(100, cents // 2), u.cur, u.fmt)
        elif r < 0.96:  # in another currency than the payment
            self.refund(tr, order, cents, "USD" if u.cur == "CNY" else "CNY", u.fmt)
        else:  # stamped (clock skew) before the payment it refunds, delivered after it
            ts = t - 1 - int(rnd() * 30)
            self.put(
                ts,
                {
                    "type": "refund",
                    "event_id": self.eid("rf-"),
                    "ts": u.fmt(ts),
                    "order_id": order,
                    "amount": _cents_str(cents, u.cur),
                    "currency": u.cur,
                },
                120 + int(rnd() * 3600),
            )

    def refund(self, t: int, order: str, cents: int, cur: str, fmt: Callable[[int], str]) -> None:
        self.put(
            t,
            {
                "type": "refund",
                "event_id": self.eid("rf-"),
                "ts": fmt(t),
                "order_id": order,
                "amount": _cents_str(cents, cur),
                "currency": cur,
            },
        )

    # ---- hourly: spend, config updates, fx publication

    def hourly(self, hour_start: int) -> None:
        rnd, w, clock = self.rnd, self.w, self.clock
        prev = hour_start - 3600
        if prev >= w.start:
            weight = _DIURNAL[(prev - w.start) // 3600 % 24] / sum(_DIURNAL)
            for c in w.campaigns:
                cny = 0.0 if rnd() < 0.02 else self.budget[c.id] * weight * (0.7 + 0.6 * rnd())
                cur = "USD" if c.platform == "tiktok" else "CNY"
                amount = cny / w.fx["USD"] if cur == "USD" else cny
                ts = hour_start + w.spend_report[int(rnd() * _T)]
                ev: dict[str, Any] = {
                    "type": "ad_spend",
                    "event_id": self.eid("sp-"),
                    "ts": c.fmt(ts),
                    "campaign_id": c.id,
                    "period_start": c.fmt(prev),
                    "amount": round(amount, 2) if rnd() < 0.03 else f"{amount:.2f}",
                    "currency": cur,
                }
                self.put_always(ts, ev)
                if rnd() < 0.05:  # the platform restates the hour later
                    ts2 = ts + w.restate_lag[int(rnd() * _T)]
                    fmt = c.fmt if rnd() < 0.8 else (clock.utc if c.fmt == clock.local else clock.local)
                    ev2 = dict(
                        ev,
                        event_id=self.eid("sp-"),
                        ts=fmt(ts2),
                        period_start=fmt(prev),
                        amount=f"{amount * (0.85 + 0.3 * rnd()):.2f}",
                    )
                    if rnd() < 0.01:
                        ev2["currency"] = _NO_FX  # a broken restatement: rejected, the old one stands
                    self.put(ts2, ev2)
        if hour_start >= self.horizon:
            return
        day, hour = divmod((hour_start - w.start) // 3600, 24)
        if hour == 9:
            self.publish_fx(hour_start, day)
        if rnd() < 0.25:
            self.config_update(hour_start + int(rnd() * 3600))

    def publish_fx(self, hour_start: int, day: int) -> None:
        """Daily rates for tomorrow at 09:15, like a central-bank fixing."""
        rnd, w = self.rnd, self.w
        eff = self.cfg.start_date + timedelta(days=day + 1)
        t = hour_start + 15 * 60 + int(rnd() * 60)
        if day == 0:
            self.put(t, w.fx_event(self.eid("fx-"), t, "SGD", eff, _SGD_RATE))
        if day + 1 < self.cfg.days:
            for cur in _FX_BASE:
                self.put(t, w.fx_event(self.eid("fx-"), t, cur, eff, w.walk(self.rng, cur)))
            if rnd() < 0.3:  # a correction of one of them, later that day
                cur = "USD" if rnd() < 0.5 else "JPY"
                t2 = t + 3 * 3600 + int(rnd() * 3600)
                self.put(t2, w.fx_event(self.eid("fx-"), t2, cur, eff, w.fx[cur] * (1 + 0.001 * rnd())))

    def config_update(self, t: int) -> None:
        rnd, w = self.rnd, self.w
        r = rnd()
        if r < 0.5 and w.campaign_cfg:  # rename or hand over to another buyer
            ev = dict(w.campaign_cfg[self.rng.choice(sorted(w.campaign_cfg))])
            if "name" in ev and not ev["name"].endswith("复投") and rnd() < 0.5:
                ev["name"] = f"{ev['name']} 复投"
            else:
                ev["buyer_id"] = f"b{int(rnd() * 20) + 1:02d}"
        elif r < 0.8 and w.plan_cfg:  # a new commission rate: applies to all of the plan's money
            ev = dict(w.plan_cfg[self.rng.choice(sorted(w.plan_cfg))])
            ev["commission_rate"] = self.rng.choice(_COMMISSION_RATES)
        elif w.campaign_cfg:  # a stale copy with an older ts arrives now: must not win
            old = w.campaign_cfg[self.rng.choice(sorted(w.campaign_cfg))]
            ev = dict(old, event_id=self.eid("cfg-"), buyer_id="b99")
            ev["ts"] = self.clock.local(w.start - 40 * _DAY + int(rnd() * _DAY))
            self.put(t, ev)
            return
        else:
            return
        ev["event_id"] = self.eid("cfg-")
        ev["ts"] = self.clock.local(t)
        key = "campaign_id" if ev["type"] == "campaign" else "plan_id"
        (w.campaign_cfg if key == "campaign_id" else w.plan_cfg)[ev[key]] = ev
        self.put(t, ev)

    # ---- the run

    def prelude(self) -> list[bytes]:
        """Configuration, then clicks from more than a week before the start."""
        w, rnd = self.w, self.rnd
        lines = [_dumps(ev) + b"\n" for _, ev in sorted(w.config, key=lambda p: (p[0], p[1]["event_id"]))]
        stale = []
        for _ in range(max(10, min(1000, int(self.users_per_day) // 200))):
            src = self.source()
            if src is None:
                break
            t = w.start - 8 * _DAY - int(rnd() * 6 * _DAY)
            dev = self.device()
            cid = f"k{next(self.ids):x}"
            self.stale.append((cid, dev))
            stale.append(
                (
                    t,
                    {
                        "type": "click",
                        "event_id": self.eid("ck-"),
                        "ts": src.fmt(t),
                        "click_id": cid,
                        "device_id": dev,
                        src.key: src.id,
                    },
                )
            )
        stale.sort(key=lambda p: p[0])
        return lines + [_dumps(ev) + b"\n" for _, ev in stale]

    def run(self) -> Iterator[bytes]:
        cfg, w = self.cfg, self.w
        first = w.start // 60
        self.cur = first
        yield from self.deliver(self.prelude())
        per_minute = [h / sum(_DIURNAL) * self.users_per_day / 60 for h in _DIURNAL]
        carry = 0.0
        for day in range(cfg.days):
            d = cfg.start_date + timedelta(days=day)
            factor = (1.12 if d.weekday() >= 5 else 1.0) * (0.95 + 0.1 * self.rnd())
            for minute in range(1440):
                m = first + day * 1440 + minute
                self.cur = m
                t0 = m * 60
                if minute % 60 == 0:
                    self.hourly(t0)
                carry += per_minute[minute // 60] * factor
                n = int(carry)
                carry -= n
                for _ in range(n):
                    self.arrival(t0 + int(self.rnd() * 60))
                self.due(m)
                bucket = self.buckets.pop(m, None)
                if bucket:
                    yield from self.deliver(bucket)
        # After the window: last hour's spend, late deliveries and retries.
        m = first + cfg.days * 1440
        self.cur = m
        self.hourly(m * 60)
        while self.buckets:
            bucket = self.buckets.pop(m, None)
            if bucket:
                yield from self.deliver(bucket)
            m += 1
            self.cur = m

    def deliver(self, lines: list[bytes]) -> Iterator[bytes]:
        """Yield lines, retrying some later (duplicates) and slipping in malformed ones."""
        for line in lines:
            yield line
            self.emitted += 1
            if self.emitted >= self.next_dup:
                self.buckets[self.cur + self.w.retry_minutes[int(self.rnd() * _T)]].append(line)
                self.next_dup = self._gap(self.cfg.duplicate_share)
            if self.emitted >= self.next_bad:
                yield _malformed(self, self.cur * 60 + int(self.rnd() * 60))
                self.emitted += 1
                self.next_bad = self._gap(self.cfg.malformed_share)


# --------------------------------------------------------------------------- malformed lines


def _malformed(tr: _Traffic, t: int) -> bytes:
    """One line that SPEC section 4 must reject (invalid_json, unknown_type or invalid_field)."""
    rng = tr.rng
    n = next(tr.ids)
    ts = tr.clock.local(t)
    eid = f"bad-{n}"
    pay = {"type": "payment", "event_id": eid, "ts": ts, "order_id": f"ob{n}", "user_id": f"ub{n}",
           "drama_id": "dr001", "amount": "9.90", "currency": "CNY", "kind": "unlock"}  # fmt: skip
    click = {"type": "click", "event_id": eid, "ts": ts, "click_id": f"kb{n}", "device_id": f"db{n}"}
    k = rng.randrange(22)
    if k == 0:  # a producer cut off mid-line
        return _line(pay)[: rng.randrange(10, 60)] + b"\n"
    if k == 1:  # not UTF-8
        return b"\xff\xfe\x00garbage from a misconfigured producer " + str(n).encode() + b"\n"
    if k == 2:
        return b"HTTP/1.1 502 Bad Gateway\n"
    if k == 3:  # JSON, but not an object
        return _line(rng.choice([[pay], ["impression", n, ts], "payment", None]))
    if k == 4:
        return _line(dict(pay, type=rng.choice(["install", "Payment", "purchase", "pageview"])))
    if k == 5:
        return _line({f: v for f, v in pay.items() if f != rng.choice(["order_id", "user_id", "amount", "kind"])})
    if k == 6:
        return _line(dict(pay, currency=rng.choice(["usd", "Cny", "US$", "RMB1", ""])))
    if k == 7:
        return _line(dict(pay, amount=rng.choice(["-9.90", -5, "-0.01"])))
    if k == 8:
        return _line(dict(pay, amount=rng.choice(["9.99999", "1.00001", 0.12345])))
    if k == 9:
        return _line(dict(pay, amount=rng.choice(["1e3", "9,90", "¥9.90", True, "1000000000000"])))
    if k == 10:
        return _line(dict(click, ts=ts[:19], campaign_id="dy0001"))  # no offset
    if k == 11:
        return _line(dict(click, campaign_id="dy0001", plan_id="pl0001"))
    if k == 12:
        return _line(click)  # neither campaign_id nor plan_id
    if k == 13:
        return _line(dict(click, type=None, campaign_id="dy0001"))
    if k == 14:
        return _line(dict(pay, user_id=None))
    if k == 15:
        return _line(dict(pay, schema_version="1"))
    if k == 16:
        return _line(dict(pay, event_id=rng.choice(["", "x" * 129])))
    if k == 17:
        return _line(dict(pay, kind="donation"))
    if k == 18:
        redirect = {"type": "redirect", "event_id": eid, "ts": ts, "user_id": f"ub{n}", "app_id": "wx5c9a1f3e7b2d4a60"}
        return _line(dict(redirect, host=rng.choice(["h5", "WeChat", "web"])))
    if k == 19:
        spend = {"type": "ad_spend", "event_id": eid, "ts": ts, "campaign_id": "dy0001", "currency": "CNY"}
        return _line(dict(spend, period_start=ts[:14] + "30:00+08:00", amount="12.00"))  # not hour-aligned
    if k == 20:
        fx = {"type": "fx_rate", "event_id": eid, "ts": ts, "currency": "USD", "effective_date": "2026-11-01"}
        plan = {"type": "promotion_plan", "event_id": eid, "ts": ts, "plan_id": f"plb{n}", "creator_id": "cr001"}
        return _line(
            rng.choice([dict(fx, rate="0"), dict(fx, rate="-7.1"), dict(plan, drama_id="dr001", commission_rate="1.5")])
        )
    bad_ts = rng.choice([ts[:11] + "25" + ts[13:], ts[:5] + "13" + ts[7:], ts[:10] + " " + ts[11:19], "1793491200"])
    return _line(dict(pay, ts=bad_ts))


# --------------------------------------------------------------------------- public API


def _lines_per_user(cfg: GeneratorConfig) -> float:
    """Average lines one arriving user produces within the run (pilot on 4,000 users)."""

    class _Pilot(_Traffic):
        lines = 0

        def put(self, t: int, ev: dict[str, Any], delay: int = 0) -> None:
            if t < self.horizon:
                self.lines += 1

        put_always = put

    clock = _Clock()
    rng = Random(cfg.seed ^ 0x5EED_F00D)
    pilot = _Pilot(cfg, _World(cfg, rng, clock), rng, 1.0)
    users = 4000
    for _ in range(users):  # arrival times spread like the real run's
        day = int(rng.random() * cfg.days)
        pilot.arrival(pilot.w.start + day * _DAY + pilot.w.time_of_day[int(rng.random() * _T)])
    while pilot.firsts or pilot.returns:
        pilot.due(min(chain(pilot.firsts, pilot.returns)))
    return pilot.lines / users


def _fixed_lines(cfg: GeneratorConfig, world: _World, users_per_day: float) -> float:
    spend = cfg.campaigns * 24 * cfg.days * 1.05
    stale = max(10, min(1000, int(users_per_day) // 200))
    return len(world.config) + spend + stale + cfg.days * 7


def generate(cfg: GeneratorConfig) -> Iterator[bytes]:
    """Yields JSON lines (bytes, each ending in b"\\n")."""
    if cfg.days < 1:
        raise ValueError("days must be >= 1")
    if cfg.campaigns < 0 or cfg.plans < 0 or cfg.users_per_day < 0:
        raise ValueError("campaigns, plans and users_per_day must be >= 0")
    if not (0 <= cfg.malformed_share < 0.5 and 0 <= cfg.duplicate_share < 0.5):
        raise ValueError("malformed_share and duplicate_share must be in [0, 0.5)")
    return _generate(cfg)


def _generate(cfg: GeneratorConfig) -> Iterator[bytes]:
    clock = _Clock()
    rng = Random(cfg.seed)
    world = _World(cfg, rng, clock)
    users_per_day = float(cfg.users_per_day)
    if cfg.events is not None:
        # Lines = fixed + users * per-user, then duplicates and malformed on top.
        target = cfg.events * (1 - cfg.duplicate_share - cfg.malformed_share)
        day_factor = sum(
            (1.12 if (cfg.start_date + timedelta(days=d)).weekday() >= 5 else 1.0) for d in range(cfg.days)
        )
        per_user = _lines_per_user(cfg)
        fixed = _fixed_lines(cfg, world, target / per_user / cfg.days)
        users_per_day = max(1.0, (target - fixed) / per_user / day_factor)
    yield from _Traffic(cfg, world, rng, users_per_day).run()
