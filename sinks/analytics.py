"""Filtered, grouped ROI and commission for the API, computed by ClickHouse.

Every value from a caller reaches ClickHouse as a bound parameter; grouping
and sorting are chosen from fixed lists, never spliced from input.

A grouping is one dimension (``campaign``) or two joined by a comma
(``date,campaign``, ``drama,platform``): its key columns are the union of the
dimensions' key columns, in order. Every grouped row also carries
``last_cohort``, the latest cohort date it sums, which says which of its
D-N figures are final (a sum is final only when its latest cohort is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.sql import query_dicts, where
from sinks.touches import touches_sql

MONEY = (
    "spend", "revenue_iap", "revenue_iaa", "refunds", "revenue_d0", "revenue_d1", "revenue_d3", "revenue_d7",
    "revenue_total", "commission",
)  # fmt: skip
COUNTS = ("new_users", "payers")
FUNNEL_COUNTS = ("impressions", "clicks")

# dimension name -> key columns in the enriched cohort rows
GROUPS: dict[str, tuple[str, ...]] = {
    "source": ("source_kind", "source_id"),
    "campaign": ("source_kind", "source_id", "name", "platform", "drama_id", "buyer_id"),
    "drama": ("drama_id",),
    "platform": ("platform",),
    "buyer": ("buyer_id",),
    "date": ("cohort_date",),
    "source_date": ("source_kind", "source_id", "cohort_date"),
}
# the dimensions that may be paired in a two-dimensional group_by
PAIRABLE = ("date", "source", "campaign", "drama", "platform", "buyer")


class BadGrouping(ValueError):
    """A ``group_by`` that is not one known dimension or two distinct pairable ones."""


@dataclass(frozen=True)
class RoiFilter:
    date_from: date | None = None
    date_to: date | None = None
    source_kind: str | None = None
    source_id: str | None = None
    platform: str | None = None
    drama_id: str | None = None
    buyer_id: str | None = None


def group_keys(group: str) -> tuple[str, ...]:
    """Key columns of ``group`` (``"campaign"`` or ``"date,campaign"``); raises ``BadGrouping``."""
    parts = [p.strip() for p in group.split(",")]
    if len(parts) == 1 and parts[0] in GROUPS:
        return GROUPS[parts[0]]
    if len(parts) != 2 or parts[0] == parts[1] or not all(p in PAIRABLE for p in parts):
        raise BadGrouping(
            f"group_by {group!r}: one of {', '.join(GROUPS)}, or two different of {', '.join(PAIRABLE)} "
            "joined by a comma (e.g. date,campaign)"
        )
    keys: list[str] = []
    for part in parts:
        keys += [k for k in GROUPS[part] if k not in keys]
    return tuple(keys)


def enriched_sql(db: str, funnel: bool = False) -> str:
    """Cohort rows with their campaign's platform, drama and buyer (plans: the plan's drama).

    With ``funnel``: also ``impressions`` and ``clicks`` of the row's source on its
    cohort date (the local date of the touch), from the event log.
    """
    touches = ""
    touch_columns = ""
    if funnel:
        touch_columns = ", ifNull(t.t_impressions, 0) AS impressions, ifNull(t.t_clicks, 0) AS clicks"
        touches = (
            " LEFT JOIN (SELECT source_kind AS t_kind, source_id AS t_id, date AS t_date, impressions AS t_impressions,"
            f" clicks AS t_clicks FROM ({touches_sql(db)})) AS t"
            " ON t.t_kind = r.source_kind AND t.t_id = r.source_id AND t.t_date = r.cohort_date"
        )
    return f"""
        SELECT r.*,
            if(r.source_kind = 'campaign', c.c_platform, '') AS platform,
            multiIf(r.source_kind = 'campaign', c.c_drama, r.source_kind = 'plan', p.p_drama, '') AS drama_id,
            if(r.source_kind = 'campaign', c.c_buyer, '') AS buyer_id,
            if(r.source_kind = 'campaign', c.c_name, '') AS name{touch_columns}
        FROM {db}.roi_cohorts AS r
        LEFT JOIN (
            SELECT campaign_id, platform AS c_platform, drama_id AS c_drama, buyer_id AS c_buyer, name AS c_name
            FROM {db}.campaigns FINAL
        ) AS c ON c.campaign_id = r.source_id
        LEFT JOIN (SELECT plan_id, drama_id AS p_drama FROM {db}.plans FINAL) AS p ON p.plan_id = r.source_id
        {touches}
    """


def filter_where(f: RoiFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a filter over enriched cohort rows, with its bound parameters."""
    return where(
        ("cohort_date >= {p_from:Date32}", "p_from", f.date_from),
        ("cohort_date <= {p_to:Date32}", "p_to", f.date_to),
        ("source_kind = {p_kind:String}", "p_kind", f.source_kind),
        ("source_id = {p_source:String}", "p_source", f.source_id),
        ("platform = {p_platform:String}", "p_platform", f.platform),
        ("drama_id = {p_drama:String}", "p_drama", f.drama_id),
        ("buyer_id = {p_buyer:String}", "p_buyer", f.buyer_id),
    )


def run(client: Client, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return query_dicts(client, sql, params, "analytics query")


def typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sums as exact Decimals and counts as ints (an empty sum arrives as NULL)."""
    for row in rows:
        for name in MONEY:
            if name in row:
                row[name] = Decimal(row[name] or 0)
        for name in (*COUNTS, *FUNNEL_COUNTS):
            if name in row:
                row[name] = int(row[name] or 0)
    return rows


def _sums(funnel: bool) -> str:
    names = (*MONEY, *COUNTS, *(FUNNEL_COUNTS if funnel else ()))
    return ", ".join(f"sum({m}) AS {m}" for m in names) + ", max(cohort_date) AS last_cohort"


def _params(funnel: bool, params: dict[str, Any], tz: str) -> dict[str, Any]:
    return {**params, "p_tz": tz} if funnel else params


def roi_grouped(
    client: Client, db: str, f: RoiFilter, group: str = "source_date", funnel: bool = False, tz: str = ""
) -> list[dict[str, Any]]:
    """Sums of every ROI column per group, biggest spend first (with ``date`` in it: in date order).

    ``funnel`` adds impressions and clicks, dated in the reporting zone ``tz``.
    """
    keys = group_keys(group)
    clause, params = filter_where(f)
    # by date: a time series first; otherwise the biggest spenders first
    first = ["cohort_date"] if "cohort_date" in keys else []
    order = ", ".join([*first, "spend DESC", "revenue_total DESC", *(k for k in keys if k not in first)])
    sql = (
        f"SELECT {', '.join(keys)}, {_sums(funnel)} FROM ({enriched_sql(db, funnel)}){clause} "
        f"GROUP BY {', '.join(keys)} ORDER BY {order}"
    )
    return typed(run(client, sql, _params(funnel, params, tz)))


def roi_totals(client: Client, db: str, f: RoiFilter, funnel: bool = False, tz: str = "") -> dict[str, Any]:
    """One row of sums over everything the filter admits (``last_cohort`` None when it admits nothing)."""
    clause, params = filter_where(f)
    sql = f"SELECT {_sums(funnel)}, count() AS n FROM ({enriched_sql(db, funnel)}){clause}"
    rows = typed(run(client, sql, _params(funnel, params, tz)))
    if not rows:
        return {}
    row = rows[0]
    if not row.pop("n"):
        row["last_cohort"] = None
    return row


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
    rows = run(client, sql, params)
    for row in rows:
        for name in ("gross", "refunds", "net", "commission"):
            row[name] = Decimal(row[name])
    return rows
