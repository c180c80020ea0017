"""SPEC 5: a cohort's D-N figure is final once as_of reaches the end of local day cohort + N."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from attribution.clock import to_micros
from attribution.maturity import day_end_us, is_final, unfinished

SHANGHAI = ZoneInfo("Asia/Shanghai")


def us(text: str) -> int:
    return to_micros(datetime.fromisoformat(text))


def test_the_end_of_a_local_day_is_the_next_local_midnight() -> None:
    assert day_end_us(date(2026, 11, 2), SHANGHAI) == us("2026-11-03T00:00:00+08:00")
    assert day_end_us(date(2026, 3, 8), ZoneInfo("America/New_York")) == us("2026-03-09T00:00:00-04:00")


def test_final_at_or_past_the_end_of_day_n() -> None:
    cohort = date(2026, 11, 2)
    assert not is_final(cohort, 0, us("2026-11-02T23:59:59.999999+08:00"), SHANGHAI)
    assert is_final(cohort, 0, us("2026-11-03T00:00:00+08:00"), SHANGHAI)
    assert not is_final(cohort, 7, us("2026-11-09T23:00:00+08:00"), SHANGHAI)
    assert is_final(cohort, 7, us("2026-11-10T00:00:00+08:00"), SHANGHAI)
    assert not is_final(cohort, 0, None, SHANGHAI)  # no accepted fact event: nothing is final


def test_the_worked_example_cohort_is_final_through_d1_only() -> None:
    # SPEC 3's example: the latest accepted fact event is the refund at 2026-11-04T10:00+08:00
    as_of = us("2026-11-04T10:00:00+08:00")
    assert unfinished(date(2026, 11, 2), (0, 1, 3, 7), as_of, SHANGHAI) == [3, 7]
    assert unfinished(date(9999, 12, 30), (0, 1), as_of, SHANGHAI) == [0, 1]
