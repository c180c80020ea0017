"""Lookup tables and constants: the shape of the simulated business (prices, platforms, delays)."""

from __future__ import annotations

import math
from datetime import timedelta, timezone
from random import Random
from typing import Any

LOCAL_TZ = timezone(timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
DAY = 86_400
SLOTS = 1024  # size of every weighted lookup table: pick with tbl[int(rnd() * SLOTS)]


def weighted(pairs: list[tuple[Any, float]]) -> tuple[Any, ...]:
    """A lookup table of SLOTS slots in which each item fills a share of its weight."""
    total = sum(w for _, w in pairs)
    out: list[Any] = []
    acc = 0.0
    for item, w in pairs:
        acc += w
        out.extend([item] * (round(acc / total * SLOTS) - len(out)))
    return tuple(out)


def sampled(rng: Random, parts: list[tuple[float, float, float]]) -> tuple[int, ...]:
    """SLOTS integer samples from a mixture of log-uniform ranges (weight, low, high)."""
    total = sum(p[0] for p in parts)
    out: list[int] = []
    for w, lo, hi in parts:
        n = round(w / total * SLOTS) if len(out) + round(w / total * SLOTS) <= SLOTS else SLOTS - len(out)
        out.extend(int(math.exp(rng.uniform(math.log(lo), math.log(hi)))) for _ in range(n))
    out.extend([out[-1]] * (SLOTS - len(out)))
    rng.shuffle(out)
    return tuple(out)


# Local hour weights: short dramas are watched in the evening and at lunch.
# fmt: off
DIURNAL = (2.6, 1.7, 1.1, 0.8, 0.7, 0.8, 1.4, 2.4, 3.2, 3.6, 3.8, 4.2,
            4.8, 4.6, 4.2, 4.2, 4.4, 4.8, 5.4, 6.3, 7.2, 7.6, 7.0, 4.9)
# fmt: on

# Platform of campaign i is PLATFORM_CYCLE[i % 20]: 40% douyin, 20% kuaishou,
# 20% tencent, 15% tiktok, 5% other, and the first five campaigns cover all five.
# fmt: off
PLATFORM_CYCLE = ("douyin", "kuaishou", "tencent", "tiktok", "douyin", "other", "douyin",
                   "kuaishou", "tencent", "douyin", "tiktok", "douyin", "kuaishou", "tencent",
                   "douyin", "tiktok", "douyin", "kuaishou", "tencent", "douyin")
# fmt: on
PLATFORM_PREFIX = {"douyin": "dy", "kuaishou": "ks", "tencent": "gdt", "tiktok": "tt", "other": "ot"}
PLATFORM_CN = {"douyin": "抖音", "kuaishou": "快手", "tencent": "广点通", "tiktok": "TikTok", "other": "其他"}

TITLES_CN = (
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
TITLES_EN = (
    "The CEO's Secret Bride",
    "Return of the War God",
    "Reborn to Revenge",
    "My Billionaire Husband",
    "The Divine Doctor",
    "The Alpha's Rejected Mate",
)

MARKETS = ("US", "JP", "TW", "HK", "SEA", "EU")

APPS = {
    "wechat": ("wx5c9a1f3e7b2d4a60", "wxa1b2c3d4e5f60718"),
    "douyin": ("tt8d3f2a1b9c7e5d40", "tt1a2b3c4d5e6f7081"),
    "app": ("com.reelroi.shorts", "id6443211234"),
    "app_overseas": ("com.reelroi.global", "id6450098765"),
}

# Reporting-currency (CNY) units per unit, around late 2026.
FX_BASE = {"USD": 7.1236, "JPY": 0.047105, "HKD": 0.91348, "TWD": 0.22081, "EUR": 7.6802, "KRW": 0.0051873}
FX_DIGITS = {"USD": 4, "JPY": 6, "HKD": 5, "TWD": 5, "EUR": 4, "KRW": 7, "SGD": 4}
SGD_RATE = 5.3114  # SGD launches the day after start: earlier SGD money has no rate
NO_FX = "THB"  # never gets a rate

OVERSEAS_CUR = weighted(
    [("USD", 62), ("JPY", 8), ("HKD", 6), ("TWD", 8), ("EUR", 5), ("KRW", 4), ("SGD", 4), (NO_FX, 3)]
)
ZERO_DECIMAL = frozenset({"JPY", "KRW", "TWD"})

# Price points per currency and kind, cheapest first (weighted towards cheap).
PRICES: dict[str, dict[str, tuple[str, ...]]] = {
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
    NO_FX: {
        "unlock": ("35.00", "69.00"),
        "recharge": ("179.00", "349.00", "699.00"),
        "subscription": ("179.00", "349.00"),
    },
}
KIND = weighted([("unlock", 45), ("recharge", 40), ("subscription", 15)])
COMMISSION_RATES = ("0.30", "0.25", "0.35", "0.20", "0.4", "0.15", "0.5")

# Chance of coming back on day k after acquisition (times the user's engagement).
RETURN = (0.0, 0.36, 0.26, 0.21, 0.18, 0.16, 0.14, 0.13) + (0.07,) * 7 + (0.035,) * 16
ENGAGEMENT = weighted([(0, 40), (1, 40), (2, 20)])  # indexes into ENG_LEVELS
IAA_D0 = weighted([(1, 20), (2, 20), (3, 18), (4, 14), (5, 10), (6, 8), (8, 6), (12, 4)])
IAA_LATER = weighted([(1, 35), (2, 28), (3, 17), (4, 10), (6, 7), (9, 3)])
PAYMENTS = weighted([(1, 62), (2, 26), (3, 9), (4, 3)])
NOISE_DEVICES = weighted([(0, 38), (1, 42), (2, 15), (3, 5)])
NOISE_IMPS = weighted([(1, 35), (2, 30), (3, 20), (4, 15)])
PRE_CLICK_IMPS = weighted([(0, 15), (1, 35), (2, 30), (3, 20)])
VT_IMPS = weighted([(1, 45), (2, 35), (3, 20)])

CURRENCIES = tuple(PRICES)
CURRENCY_INDEX = {c: i for i, c in enumerate(CURRENCIES)}
HOSTAPPS = tuple(("app" if key == "app_overseas" else key, app) for key, apps in APPS.items() for app in apps)
HOSTAPP_INDEX = {pair: i for i, pair in enumerate(HOSTAPPS)}
ENG_LEVELS = (0.35, 1.0, 1.9)
