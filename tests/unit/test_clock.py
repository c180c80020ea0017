"""Instants to microseconds: the fast float path must equal exact arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from attribution.clock import EPOCH, to_micros

instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone(timedelta(hours=8)))
)


@given(instants)
def test_to_micros_is_exact(instant: datetime) -> None:
    assert to_micros(instant) == (instant - EPOCH) // timedelta(microseconds=1)
