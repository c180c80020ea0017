"""Filtered, grouped ROI and commission for the API, computed by ClickHouse.

Every value from a caller reaches ClickHouse as a bound parameter; grouping
and sorting are chosen from fixed lists, never spliced from input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.sql import query_dicts, where

MONEY = (
    "spend", "revenue_iap", "revenue_iaa", "refunds", "revenue_d0", "revenue_d1", "revenue_d3", "revenue_d7",
    "revenue_total", "commission",
)  # fmt: skip
COUNTS = ("new_users", "payers")

# group name -> (key columns in the enriched cohort rows)
GROUPS: dict[str, tuple[str, ...]] = {
    "source": ("source_kind", "source_id"),
    "campaign": ("source_kind", "source_id", "name", "platform", "drama_id", "buyer_id"),
    "drama": ("drama_id",),
    "platform": ("platform",),
    "buyer": ("buyer_id",),
    "date": ("cohort_date",),
    "source_date": ("source_kind", "source_id", "cohort_date"),
}


@dataclass(frozen=True)
class RoiFilter:
    date_from: date | None = None
    date_to: date | None = None
    source_kind: str | None = None
    source_id: str | None = None
    platform: str | None = None
    drama_id: str | None = None
    buyer_id: str | None = None


def _enriched(db: str) -> str:
    """Cohort rows with their campaign's platform, drama and buyer (plans: the plan's drama)."""
    return f"""
        SELECT r.*,
            if(r.source_kind = 'campaign', c.c_platform, '') AS platform,
            multiIf(r.source_kind = 'campaign', c.c_drama, r.source_kind = 'plan', p.p_drama, '') AS drama_id,
            if(r.source_kind = 'campaign', c.c_buyer, '') AS buyer_id,
            if(r.source_kind = 'campaign', c.c_name, '') AS name
        FROM {db}.roi_cohorts AS r
        LEFT JOIN (
            SELECT campaign_id, platform AS c_platform, drama_id AS c_drama, buyer_id AS c_buyer, name AS c_name
            FROM {db}.campaigns FINAL
        ) AS c ON c.campaign_id = r.source_id
        LEFT JOIN (SELECT plan_id, drama_id AS p_drama FROM {db}.plans FINAL) AS p ON p.plan_id = r.source_id
    """


def _where(f: RoiFilter) -> tuple[str, dict[str, Any]]:
    return where(
        ("cohort_date >= {p_from:Date32}", "p_from", f.date_from),
        ("cohort_date <= {p_to:Date32}", "p_to", f.date_to),
        ("source_kind = {p_kind:String}", "p_kind", f.source_kind),
        ("source_id = {p_source:String}", "p_source", f.source_id),
        ("platform = {p_platform:String}", "p_platform", f.platform),
        ("drama_id = {p_drama:String}", "p_drama", f.drama_id),
        ("buyer_id = {p_buyer:String}", "p_buyer", f.buyer_id),
    )


def _run(client: Client, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return query_dicts(client, sql, params, "analytics query")


def _typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for name in MONEY:
            if name in row:
                row[name] = Decimal(row[name] or 0)
        for name in COUNTS:
            if name in row:
                row[name] = int(row[name] or 0)
    return rows


def roi_grouped(client: Client, db: str, f: RoiFilter, group: str = "source_date") -> list[dict[str, Any]]:
    """Sums of every ROI column per group, biggest spend first."""
    keys = GROUPS[group]
    clause, params = _where(f)
    sums = ", ".join(f"sum({m}) AS {m}" for m in (*MONEY, *COUNTS))
    # by date: in date order (a time series); otherwise the biggest spenders first
    order = "cohort_date" if group == "date" else f"spend DESC, revenue_total DESC, {', '.join(keys)}"
    sql = f"SELECT {', '.join(keys)}, {sums} FROM ({_enriched(db)}){clause} GROUP BY {', '.join(keys)} ORDER BY {order}"
    return _typed(_run(client, sql, params))


def roi_totals(client: Client, db: str, f: RoiFilter) -> dict[str, Any]:
    """One row of sums over everything the filter admits."""
    clause, params = _where(f)
    sums = ", ".join(f"sum({m}) AS {m}" for m in (*MONEY, *COUNTS))
    rows = _typed(_run(client, f"SELECT {sums} FROM ({_enriched(db)}){clause}", params))
    return rows[0] if rows else {}


def commission_grouped(
    client: Client,
    db: str,
    creator_id: str | None,
    date_from: date | None,
    date_to: date | None,
    plan_id: str | None = None,
    group: str = "day",
) -> list[dict[str, Any]]:
    """Commission by (creator, plan, day), by plan, or by day."""
    keys = {"detail": ("creator_id", "plan_id", "date"), "plan": ("creator_id", "plan_id"), "day": ("date",)}[group]
    clause, params = where(
        ("creator_id = {p_creator:String}", "p_creator", creator_id),
        ("plan_id = {p_plan:String}", "p_plan", plan_id),
        ("date >= {p_from:Date32}", "p_from", date_from),
        ("date <= {p_to:Date32}", "p_to", date_to),
    )
    sql = (
        f"SELECT {', '.join(keys)}, sum(gross) AS gross, sum(refunds) AS refunds, sum(net) AS net, "
        f"sum(commission) AS commission FROM {db}.commission_daily{clause} "
        f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
    rows = _run(client, sql, params)
    for row in rows:
        for name in ("gross", "refunds", "net", "commission"):
            row[name] = Decimal(row[name])
    return rows
