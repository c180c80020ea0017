"""Exchange rates (SPEC 3.6): the final configuration, looked up by effective date."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date
from decimal import Context, Decimal

# Exact arithmetic: amounts have <= 16 digits and rates are arbitrary decimals;
# 100 significant digits is far beyond anything a product of two of them needs.
EXACT = Context(prec=100)

Version = tuple[int, str]
_MISS = object()  # (ts in micros, event_id): "latest" is the max


class FxTable:
    """Rates per currency; for one (currency, effective_date) the latest version wins."""

    __slots__ = ("_dates", "_lookups", "_rates", "reporting")

    def __init__(self, reporting_currency: str) -> None:
        self.reporting = reporting_currency
        self._rates: dict[str, dict[date, tuple[Version, Decimal]]] = {}
        self._dates: dict[str, list[date]] = {}
        self._lookups: dict[tuple[str, date], Decimal | None] = {}

    def upsert(self, currency: str, effective: date, version: Version, rate: Decimal) -> bool:
        """Record one fx_rate event; True if the currency's final rates changed."""
        per_date = self._rates.setdefault(currency, {})
        current = per_date.get(effective)
        if current is not None and current[0] >= version:
            return False
        per_date[effective] = (version, rate)
        self._dates[currency] = sorted(per_date)
        self._lookups = {k: v for k, v in self._lookups.items() if k[0] != currency}
        return current is None or current[1] != rate

    def rate(self, currency: str, on: date) -> Decimal | None:
        """Reporting units per unit of ``currency`` on local date ``on``; None if no rate applies."""
        if currency == self.reporting:
            return Decimal(1)
        key = (currency, on)
        hit = self._lookups.get(key, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        dates = self._dates.get(currency)
        found: Decimal | None = None
        if dates:
            i = bisect_right(dates, on)
            if i:
                found = self._rates[currency][dates[i - 1]][1]
        self._lookups[key] = found
        return found

    def convert(self, amount: Decimal, rate: Decimal) -> Decimal:
        return EXACT.multiply(amount, rate)

    def rows(self) -> list[tuple[str, date, Decimal]]:
        return [(c, d, v[1]) for c, per in self._rates.items() for d, v in per.items()]
