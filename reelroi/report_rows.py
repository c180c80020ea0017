"""Exact report rows from the store to what the API and the CLI show, with what is final.

Shared by ``reelroi/api/reports.py`` and ``reelroi/cli_reports.py`` so the two
never disagree: money 2 places, ROI and rates 4 places or None, and for every
ROI row the list of its figures that are not final yet (SPEC 5).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from reelroi.formatting import display, funnel_columns, money, roi, roi_columns
from reelroi.labels import MATURING, ReportContext

CURVE_DAYS = (0, 1, 3, 7)
DEFAULT_MATRIX_DAYS = (0, 1, 2, 3, 7, 14, 30)
PERIODS = ("day", "week", "month")


def roi_shown(row: dict[str, Any], context: ReportContext, funnel: bool = False) -> dict[str, Any]:
    """One exact ROI row (grouped or total) for display, with ROI, optional funnel columns and ``unfinished``.

    A grouped row sums several cohorts: a D-N figure of it is final only when
    that of its latest cohort (``last_cohort``) is.
    """
    exact = dict(row)
    last = exact.pop("last_cohort", None) or exact.get("cohort_date")
    shown = {**display(exact), **roi_columns(exact)}
    if funnel:
        shown.update(funnel_columns(exact))
    shown["unfinished"] = context.unfinished(last, [c for c in MATURING if c in shown]) if last else []
    return shown


def parse_days(text: str) -> list[int]:
    """``"0,1,2,3,7,14,30"`` to distinct offsets in ascending order; raises ValueError."""
    try:
        days = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"days must be whole numbers joined by commas, got {text!r}") from None
    if not days:
        raise ValueError("days: give at least one offset")
    return days


def matrix_shown(rows: list[dict[str, Any]], days: list[int], context: ReportContext) -> list[dict[str, Any]]:
    """Matrix rows for the API: keys, cohort_date, spend, new_users and one cell per offset."""
    out = []
    for row in rows:
        cohort: date = row["cohort_date"]
        keys = display({k: v for k, v in row.items() if k not in ("spend", "new_users", "revenue")})
        cells = [
            {"day": n, "revenue": money(rev), "roi": roi(rev, row["spend"]), "final": context.is_final(cohort, n)}
            for n, rev in zip(days, row["revenue"], strict=True)
        ]
        out.append({**keys, "spend": money(row["spend"]), "new_users": row["new_users"], "cells": cells})
    return out


def matrix_flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API matrix rows as flat rows (``revenue_dN``, ``roi_dN`` per offset, ``unfinished``) for CSV, xlsx and tables."""
    out = []
    for row in rows:
        flat = {k: v for k, v in row.items() if k != "cells"}
        late = []
        for cell in row["cells"]:
            n = cell["day"]
            flat[f"revenue_d{n}"] = cell["revenue"]
            flat[f"roi_d{n}"] = cell["roi"]
            if not cell["final"]:
                late += [f"revenue_d{n}", f"roi_d{n}"]
        flat["unfinished"] = late
        out.append(flat)
    return out


def curve_points(by_date: list[dict[str, Any]], context: ReportContext) -> list[dict[str, Any]]:
    """The cohort curve from exact rows per cohort date: point D-N sums only the cohorts whose D-N is final.

    ``cohorts`` counts the cohort dates in a point; ``total`` sums every cohort
    (it is never final) and has ``offset`` None.
    """
    points = []
    for n in CURVE_DAYS:
        final = [r for r in by_date if context.is_final(r["cohort_date"], n)]
        points.append(_point(f"d{n}", n, final, f"revenue_d{n}"))
    points.append(_point("total", None, by_date, "revenue_total"))
    return points


def _point(day: str, offset: int | None, rows: list[dict[str, Any]], column: str) -> dict[str, Any]:
    revenue = sum((r[column] for r in rows), Decimal(0))
    spend = sum((r["spend"] for r in rows), Decimal(0))
    return {
        "day": day,
        "offset": offset,
        "cohorts": len(rows),
        "spend": money(spend),
        "revenue": money(revenue),
        "roi": roi(revenue, spend),
    }


def compare_windows(period: str, to: date) -> tuple[tuple[date, date], tuple[date, date]]:
    """The period to date ending ``to`` and the same stretch of the period before, as inclusive cohort dates.

    day: ``to`` against the day before; week (weeks start on Monday): Monday to
    ``to`` against the same weekdays of the week before; month: the 1st to
    ``to`` against the same days of the month before (to its last day if it is
    shorter).
    """
    if period == "day":
        return (to, to), (to - timedelta(days=1), to - timedelta(days=1))
    if period == "week":
        start = to - timedelta(days=to.weekday())
        return (start, to), (start - timedelta(days=7), to - timedelta(days=7))
    if period == "month":
        start = to.replace(day=1)
        before = start - timedelta(days=1)
        last = before.replace(day=min(to.day, calendar.monthrange(before.year, before.month)[1]))
        return (start, to), (before.replace(day=1), last)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
