"""What every report says about itself: its policy, its ``as_of`` and which figures are final.

SPEC 5: a report states the policy it was computed under and its ``as_of``
(the greatest ``ts`` of an accepted fact event); a cohort's D-N figures are
final once ``as_of`` has passed local day ``cohort_date + N``, and an
unfinished D7 must not read like a final one. JSON rows keep SPEC's keys and
add ``unfinished`` (the figures not final yet); CSV rows add the same as a
column plus the policy and ``as_of``; a table gets a heading line and marks
each unfinished cell with ``*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from attribution.maturity import is_final
from attribution.policy import Policy, format_duration

# cohort figures and the day offset each one waits for
MATURING = {"revenue_d0": 0, "roi_d0": 0, "revenue_d1": 1, "revenue_d3": 3, "revenue_d7": 7, "roi_d7": 7}
MARK = "*"


@dataclass(frozen=True)
class ReportContext:
    """The policy a database was built under and the data's clock."""

    policy: Policy
    as_of_us: int | None
    rates_for_reporting_currency: int = 0  # fx_rate events quoting the reporting currency itself: a warning

    def warning(self) -> str | None:
        """Set when the rates were evidently quoted against another currency than the reporting one."""
        n = self.rates_for_reporting_currency
        if not n:
            return None
        cur = self.policy.currency
        return (
            f"warning: {n} fx_rate event(s) give {cur}, the reporting currency, a rate other than 1, so the rates were "
            f"quoted against another currency; they are ignored and every other rate is read as {cur} per unit, "
            f"which scales the figures wrongly unless the rates really quote {cur} (SPEC 3.6)"
        )

    def as_of(self) -> str | None:
        """``as_of`` in the reporting time zone, ISO 8601 with its offset."""
        if self.as_of_us is None:
            return None
        instant = datetime.fromtimestamp(self.as_of_us / 1_000_000, UTC).astimezone(self.policy.zone)
        return instant.isoformat(timespec="seconds")

    def labels(self) -> dict[str, str]:
        """The policy and ``as_of`` as columns of an export."""
        return {
            "currency": self.policy.currency,
            "tz": self.policy.tz,
            "click_window": format_duration(self.policy.click_window_s),
            "view_window": format_duration(self.policy.view_window_s),
            "as_of": self.as_of() or "",
        }

    def meta(self) -> dict[str, str | None]:
        """The API's ``meta``: the policy, ``as_of`` (None before any fact) and the rates warning."""
        return {**self.policy.describe(), "as_of": self.as_of(), "warning": self.warning()}

    def local_today(self) -> date | None:
        """The local date of ``as_of`` (None before any fact)."""
        if self.as_of_us is None:
            return None
        return datetime.fromtimestamp(self.as_of_us / 1_000_000, UTC).astimezone(self.policy.zone).date()

    def is_final(self, cohort: date, days: int) -> bool:
        return is_final(cohort, days, self.as_of_us, self.policy.zone)

    def heading(self, title: str) -> str:
        """One line above a table: what it is, in which currency and zone, under which windows, as of when."""
        p = self.policy
        as_of = self.as_of() or "no accepted fact events yet"
        return (
            f"{title} · amounts in {p.currency} · dates in {p.tz} · click window "
            f"{format_duration(p.click_window_s)} · view window {format_duration(p.view_window_s)} · as of {as_of}"
        )

    def unfinished(self, cohort: date, columns: Any = MATURING) -> list[str]:
        """The cohort's figures among ``columns`` that are not final at ``as_of``."""
        zone = self.policy.zone
        return [
            name for name in columns if name in MATURING and not is_final(cohort, MATURING[name], self.as_of_us, zone)
        ]


def saved_policy(settings: dict[str, str]) -> Policy:
    """The policy a database was last built with, from its saved settings (defaults where none was saved)."""
    return Policy.from_settings(settings)


def report_context(client: Any, db: str) -> ReportContext:
    """The context of a report read now from this database: its saved policy, ``as_of`` and rates warning."""
    from sinks.reports import as_of_us, rates_quoting
    from sinks.writer import load_settings

    policy = saved_policy(load_settings(client, db))
    return ReportContext(policy, as_of_us(client, db), rates_quoting(client, db, policy.currency))


def with_maturity(rows: list[dict[str, Any]], context: ReportContext) -> list[dict[str, Any]]:
    """Display rows of the ROI report with ``unfinished`` added (their cohort_date is an ISO string)."""
    out = []
    for row in rows:
        cohort = date.fromisoformat(row["cohort_date"])
        out.append({**row, "unfinished": context.unfinished(cohort, [c for c in MATURING if c in row])})
    return out


def for_csv(rows: list[dict[str, Any]], context: ReportContext) -> list[dict[str, Any]]:
    """Rows as exported: ``unfinished`` as a space-separated cell, then the policy and ``as_of`` columns."""
    labels = context.labels()
    out = []
    for row in rows:
        shown = {k: (" ".join(v) if k == "unfinished" else v) for k, v in row.items()}
        out.append({**shown, **labels})
    return out


def for_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for a terminal: each unfinished figure marked with ``*``, the ``unfinished`` list dropped."""
    out = []
    for row in rows:
        late = set(row.get("unfinished", ()))
        out.append(
            {k: (f"{v}{MARK}" if k in late and v is not None else v) for k, v in row.items() if k != "unfinished"}
        )
    return out


def table_footer(rows: list[dict[str, Any]]) -> str | None:
    if any(row.get("unfinished") for row in rows):
        return f"{MARK} not final: that day of the cohort has not ended by as_of (SPEC 5); revenue_total never is"
    return None
