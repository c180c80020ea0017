"""Instants as integer microseconds, and local dates in the reporting time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


_FLOAT_EXACT_S = 2**52 // 1_000_000  # below this many seconds a float holds every microsecond


def to_micros(instant: datetime) -> int:
    """Exact microseconds since the epoch (comparisons and windows use these)."""
    seconds = instant.timestamp()
    if -_FLOAT_EXACT_S < seconds < _FLOAT_EXACT_S:
        return round(seconds * 1_000_000)
    return (instant - EPOCH) // _MICRO


class LocalDates:
    """Local date of an instant in one zone, memoised per UTC minute.

    Real zone offsets are whole minutes (LMT offsets of the 1800s aside), so
    every instant of a UTC minute has the same local date.
    """

    __slots__ = ("_cache", "_zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._cache: dict[int, date] = {}

    def of_micros(self, micros: int) -> date:
        minute = micros // 60_000_000
        hit = self._cache.get(minute)
        if hit is None:
            hit = (EPOCH + timedelta(minutes=minute)).astimezone(self._zone).date()
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            self._cache[minute] = hit
        return hit
