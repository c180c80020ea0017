"""Instants as integers, and local dates in the reporting time zone.

Two units: microseconds, which is what ClickHouse stores and reports show,
and ticks of 10^-18 s, in which the engine compares instants. RFC 3339 allows
any number of fractional digits and SPEC's windows and "latest" are exact, so
a click 7 days and 100 ns before a redirect is outside a 7-day window: the
digits beyond the microsecond (kept by ``schemas.fields.parse_timestamp`` as
``Instant.beyond``) take part in every comparison, up to the 18th.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


# Below 2^31 s (January 2038) a float's spacing is under 2.4e-7 s, and timestamp() and the product by 10^6
# are each rounded once, so round() lands on the exact microsecond; past it (2106, say) it does not.
_FLOAT_EXACT_S = 2**31
TICKS_PER_US = 10**12
TICKS_PER_SECOND = 10**18


def to_micros(instant: datetime) -> int:
    """Exact microseconds since the epoch (comparisons and windows use these)."""
    seconds = instant.timestamp()
    if -_FLOAT_EXACT_S < seconds < _FLOAT_EXACT_S:
        return round(seconds * 1_000_000)
    return (instant - EPOCH) // _MICRO


def to_ticks(instant: datetime) -> int:
    """Exact ticks (10^-18 s) since the epoch, including digits beyond the microsecond."""
    beyond: str = getattr(instant, "beyond", "")
    return to_micros(instant) * TICKS_PER_US + (int(beyond[:12].ljust(12, "0")) if beyond else 0)


class LocalDates:
    """Local date of an instant in one zone, memoised per UTC minute.

    Real zone offsets are whole minutes (LMT offsets of the 1800s aside), so
    every instant of a UTC minute has the same local date.
    """

    __slots__ = ("_cache", "_zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._cache: dict[int, date] = {}

    def of_ticks(self, ticks: int) -> date:
        return self.of_micros(ticks // TICKS_PER_US)

    def of_micros(self, micros: int) -> date:
        minute = micros // 60_000_000
        hit = self._cache.get(minute)
        if hit is None:
            hit = (EPOCH + timedelta(minutes=minute)).astimezone(self._zone).date()
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            self._cache[minute] = hit
        return hit
