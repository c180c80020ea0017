"""Bytes and strings on the hot path: JSON lines, RFC 3339 times cached per hour, ids and money."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson

from reelroi.generator.tables import LOCAL_TZ, ZERO_DECIMAL

# Not OPT_APPEND_NEWLINE: orjson leaves its ~4 KiB output buffer allocated behind every
# bytes object it returns; "+ b'\n'" copies the line into an object of its own size.

dumps = orjson.dumps


def json_line(ev: Any) -> bytes:
    return dumps(ev) + b"\n"


MINSEC_LOCAL = tuple(f"{m:02d}:{s:02d}+08:00" for m in range(60) for s in range(60))
MINSEC_UTC = tuple(f"{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))


class Clock:
    """RFC 3339 formatting of epoch seconds, cached per hour (the hot path)."""

    def __init__(self) -> None:
        self._local: dict[int, str] = {}
        self._utc: dict[int, str] = {}

    def local(self, t: int) -> str:
        h = t // 3600
        p = self._local.get(h)
        if p is None:
            p = self._local[h] = datetime.fromtimestamp(h * 3600, LOCAL_TZ).strftime("%Y-%m-%dT%H:")
        return p + MINSEC_LOCAL[t - h * 3600]

    def utc(self, t: int) -> str:
        h = t // 3600
        p = self._utc.get(h)
        if p is None:
            p = self._utc[h] = datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H:")
        return p + MINSEC_UTC[t - h * 3600]


def local_midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ).timestamp())


def device_of(n: int) -> str:
    """A device id that looks random but is unique per n (odd multiplier: a bijection mod 2^40)."""
    return f"d{(n * 0x9E3779B1) & 0xFFFFFFFFFF:010x}"


def price_point(s: str) -> tuple[str, int, float | int]:
    """(decimal string, hundredths, JSON-number form) of a price point."""
    cents = round(float(s) * 100)
    num: float | int = cents // 100 if cents % 100 == 0 else float(s)
    return s, cents, num


def cents_str(cents: int, cur: str) -> str:
    if cur in ZERO_DECIMAL:
        return str(max(1, cents // 100))
    return f"{cents // 100}.{cents % 100:02d}"
