"""The postback ledger for people: exact rows from sinks/postbacks.py to display rows.

One place for ``reelroi postbacks``, ``/api/v1/postbacks`` and the buyer page's
card, so they never disagree: amounts to two places, instants in the reporting
time zone (ISO 8601 with the offset), a delivery that has not happened yet as
empty cells.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reelroi.formatting import display
from reelroi.statements_view import local_time

LEDGER_COLUMNS = (
    "campaign_id", "name", "buyer_id", "platform", "kind", "user_id", "order_id", "amount", "conversion_at", "decided_at",
    "status", "detail", "attempts", "last_answer", "last_attempt_at", "delivery", "decision", "key",
    "click_event_id", "callback",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "campaign_id", "name", "platform", "buyer_id", "activations", "pays", "pay_value", "decided_send", "sent", "sent_activations",
    "sent_pays", "sent_pay_value", "pending", "sending", "failed", "held_kind", "held_min_amount", "held_ratio",
    "superseded", "superseded_sent",
)  # fmt: skip


def ledger_shown(row: dict[str, Any], tz: str) -> dict[str, Any]:
    """One decision with its delivery: ``*_at`` local instants; no delivery yet: no attempt time."""
    at = {
        "conversion_at": local_time(row["conversion_us"], tz),
        "decided_at": local_time(row["decided_us"], tz),
        "last_attempt_at": local_time(row["last_attempt_us"], tz),
    }
    return display({name: at[name] if name in at else row[name] for name in LEDGER_COLUMNS})


def summary_shown(row: dict[str, Any]) -> dict[str, Any]:
    """A campaign's true conversions beside its postbacks (counts as they are, amounts to two places)."""
    return display({name: row[name] for name in SUMMARY_COLUMNS})


def since_us(text: str | None, tz: str) -> int | None:
    """A ``since`` bound as microseconds: a date is its midnight in ``tz``, a time without offset is in ``tz``.

    Raises ``ValueError`` for anything else.
    """
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (use YYYY-MM-DD or 2026-11-02T09:00:00+08:00)") from None
    if len(text.strip()) == 10:  # a bare date
        when = datetime.combine(when.date(), time())
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
