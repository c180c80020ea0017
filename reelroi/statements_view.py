"""Creator statements for people: exact rows from sinks/statements.py to display rows.

One place for the CLI now and the API and creator page later: money to two
places (``reelroi.formatting.display``), rates as the exact decimal they are,
instants in the statement's time zone, and each order's linked refunds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from reelroi.formatting import display, money


def local_time(micros: int | None, tz: str) -> str | None:
    """An instant in microseconds as local ISO time with its offset; None stays None."""
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, UTC).astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def rate_text(rate: Decimal | None) -> str | None:
    """A commission rate exactly (``0.155``, not rounded like money)."""
    if rate is None:
        return None
    text = format(rate.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def statement_row(row: dict[str, Any]) -> dict[str, Any]:
    """A statement header for display (list and show)."""
    tz = row["tz"]
    shown = {**row, "as_of": local_time(row["as_of"], tz), "closed_at": local_time(row["closed_at"], tz)}
    shown["forced"] = bool(row["forced"])
    return display(shown)


def line_row(row: dict[str, Any]) -> dict[str, Any]:
    """A statement line: which period and plan, the plan's drama and rate, its figures."""
    return display({**row, "commission_rate": rate_text(row["commission_rate"])})


def linked_refunds(row: dict[str, Any], tz: str) -> list[dict[str, Any]]:
    return [
        {"refund_event_id": eid, "refunded_at": local_time(int(ts), tz), "amount": money(Decimal(amount))}
        for eid, ts, amount in zip(row["refund_ids"], row["refund_times"], row["refund_amounts"], strict=True)
    ]


def order_row(row: dict[str, Any], tz: str, nested: bool) -> dict[str, Any]:
    """One order of a line. ``nested``: linked refunds as a list (JSON), else as one text cell (table, CSV)."""
    refunds = linked_refunds(row, tz)
    out = {
        "line_no": row["line_no"],
        "kind": row["kind"],
        "period": row["period"],
        "plan_id": row["plan_id"],
        "order_id": row["order_id"],
        "paid_at": local_time(row["paid_at"], tz),
        "drama_id": row["drama_id"],
        "amount": row["gross"],
        "refunds": row["refunds"],
        "net": row["net"],
        "commission_rate": rate_text(row["commission_rate"]),
        "commission": row["commission"],
        "linked_refunds": refunds if nested else "; ".join(f"{r['refunded_at']} {r['amount']}" for r in refunds),
    }
    return display(out)
