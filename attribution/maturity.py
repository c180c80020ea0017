"""Which figures are final (SPEC 5, "As of, and unfinished figures").

A report's ``as_of`` is the data's own clock: the greatest ``ts`` of any
accepted fact event. A cohort's ``revenue_dN`` (and ``roi_dN``) is final once
``as_of`` is at or past the end of local day ``cohort_date + N``, so a replay
of last year is final everywhere while today's cohort is not; ``revenue_total``
is never final.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from attribution.clock import to_micros


def day_end_us(day: date, zone: ZoneInfo) -> int:
    """The instant local day ``day`` ends (the next local midnight), in microseconds."""
    return to_micros(datetime.combine(day + timedelta(days=1), time(), tzinfo=zone))


def is_final(cohort: date, days: int, as_of_us: int | None, zone: ZoneInfo) -> bool:
    """True if the D``days`` figure of cohort ``cohort`` can no longer grow on the data's clock."""
    if as_of_us is None:
        return False
    try:
        return as_of_us >= day_end_us(cohort + timedelta(days=days), zone)
    except OverflowError:  # a cohort near year 9999: its D-N day never ends
        return False


def unfinished(cohort: date, days: Iterable[int], as_of_us: int | None, zone: ZoneInfo) -> list[int]:
    """The offsets among ``days`` whose figures are not final yet, in the order given."""
    return [n for n in days if not is_final(cohort, n, as_of_us, zone)]
