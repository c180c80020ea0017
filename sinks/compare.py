"""Per-source totals of one set of fact tables: what ``reattribute --dry-run`` compares.

The same query runs over the live tables and over a build's siblings, so a
dry run shows, per source, what a new policy would change before anything is
switched in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.sql import query_dicts

_ZERO = "CAST(0 AS Decimal(76, 30))"


def source_totals(
    client: Client, db: str, names: dict[str, str] | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """(source_kind, source_id) -> new users, net revenue (all dates) and spend, exact.

    ``names`` maps a live table to the table to read instead (a build's sibling).
    """
    users, money, spend = (f"{db}.{(names or {}).get(t, t)}" for t in ("users", "money", "spend"))
    sql = f"""
        SELECT source_kind, source_id, sum(n) AS new_users, sum(revenue) AS revenue, sum(cost) AS spend FROM (
            SELECT source_kind, source_id, count() AS n, {_ZERO} AS revenue, {_ZERO} AS cost
            FROM {users} FINAL GROUP BY source_kind, source_id
            UNION ALL
            SELECT source_kind, source_id, 0, sum(value), {_ZERO} FROM {money} FINAL GROUP BY source_kind, source_id
            UNION ALL
            SELECT 'campaign', campaign_id, 0, {_ZERO}, sum(value) FROM {spend} FINAL GROUP BY campaign_id
        ) GROUP BY source_kind, source_id
    """
    rows = query_dicts(client, sql, {}, "source totals")
    return {
        (r["source_kind"], r["source_id"]): {
            "new_users": int(r["new_users"]),
            "revenue": Decimal(r["revenue"]),
            "spend": Decimal(r["spend"]),
        }
        for r in rows
    }
