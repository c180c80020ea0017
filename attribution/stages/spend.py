"""The spend stage: the counted version of every campaign-hour (SPEC 2, ``ad_spend``; section 5).

Platforms restate cost: for one (campaign_id, period_start) the accepted
version with the greatest ``ts`` counts (ties: greater event_id), and a
version without an fx rate never counts. State is keyed by campaign-hour, so
a checkpoint of a changed hour does not rewrite the campaign's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from attribution.fx import EXACT
from attribution.orders import NO_FX_RATE, Verdict
from attribution.outputs import SpendFact
from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.facts import Fact
from attribution.stages.records import ConfigIn, SpendIn, StageRecord
from attribution.state import SpendRec

_EPOCH_DATE = date(1970, 1, 1)


@dataclass(slots=True)
class HourState:
    seen: dict[str, str] = field(default_factory=dict)
    versions: list[SpendRec] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    counted: SpendFact | None = None


class SpendStage(Stage[HourState]):
    name = "spend"

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self._by_currency: dict[str, set[str]] = {}

    def _apply(self, record: StageRecord, at: int) -> None:
        if isinstance(record, SpendIn):
            key = hour_key(record.campaign_id, record.period_us)
            state = self.keys.get(key)
            if state is None:
                state = self.keys[key] = HourState()
            if not self.first_copy(state.seen, record.event_id, record.origin, at):
                return
            state.versions.append(
                SpendRec(
                    record.ts, record.event_id, record.period_us, record.period_date, record.amount,
                    record.currency, record.origin, b"",
                )
            )  # fmt: skip
            self._by_currency.setdefault(record.currency, set()).add(key)
            self.touch(key, at)
        elif isinstance(record, ConfigIn):
            self.apply_config(record, at)

    def rate_changed(self, currency: str, since: date, at: int) -> None:
        for key in self._by_currency.get(currency, ()):
            if any(v.period_date >= since for v in self.keys[key].versions if v.currency == currency):
                self.touch(key, at)

    def _recompute(self, key: str, at: int) -> None:
        """Restated spend: the latest version that has a rate counts."""
        state = self.keys[key]
        best: SpendRec | None = None
        best_rate = None
        for version in state.versions:
            rate = self.config.fx.rate(version.currency, version.period_date)
            verdict = None
            if rate is None:
                verdict = Verdict(
                    NO_FX_RATE, f"no {version.currency} rate effective on or before {version.period_date}"
                )
            elif best is None or version > best:
                best, best_rate = version, rate
            self.set_verdict(state.verdicts, version.event_id, verdict, version.origin, "ad_spend", at)
        campaign_id, period_us = split_hour_key(key)
        fact: SpendFact | None = None
        if best is not None and best_rate is not None:
            fact = SpendFact(
                campaign_id, period_us, best.period_date, best.event_id, best.currency, best.amount, best_rate,
                EXACT.multiply(best.amount, best_rate),
            )  # fmt: skip
        if fact != state.counted:
            if fact is None:
                gone = SpendFact(campaign_id, period_us, _EPOCH_DATE, "", "", EXACT.create_decimal(0),
                                 EXACT.create_decimal(0), EXACT.create_decimal(0), False)  # fmt: skip
                self.facts.append(Fact("spend", at, gone))
            else:
                self.facts.append(Fact("spend", at, fact))
            state.counted = fact

    def _reindex(self) -> None:
        self._by_currency = {}
        for key, state in self.keys.items():
            for v in state.versions:
                self._by_currency.setdefault(v.currency, set()).add(key)


def hour_key(campaign_id: str, period_us: int) -> str:
    return f"{campaign_id}\x1f{period_us}"


def split_hour_key(key: str) -> tuple[str, int]:
    campaign_id, _, period = key.rpartition("\x1f")
    return campaign_id, int(period)


__all__ = ["ConfigIn", "SpendStage"]
