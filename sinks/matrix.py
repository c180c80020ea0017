"""The cohort matrix: revenue of each cohort at any list of day offsets, computed by ClickHouse.

Revenue at D``n`` is SPEC 5's definition for any ``n``: net revenue (payments
and ad unlocks less refunds) of the cohort's users with local date ≤
``cohort_date + n``. The offsets reach ClickHouse as one bound array; each
row's spend and new users come from the same cohort rows as the ROI report.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.analytics import GROUPS, RoiFilter, enriched_sql, filter_where, run, typed

MATRIX_GROUPS = ("source", "campaign", "drama", "platform")
MAX_DAYS = 32  # offsets one matrix may ask for
MAX_OFFSET = 3660


def _money_by_day(db: str) -> str:
    return f"""
        SELECT source_kind, source_id, cohort_date,
            sumForEach(arrayMap(n -> if(date <= cohort_date + n, value, 0), {{p_days:Array(Int32)}})) AS by_day
        FROM {db}.money FINAL
        GROUP BY source_kind, source_id, cohort_date
    """


def cohort_matrix(
    client: Client, db: str, f: RoiFilter, days: list[int], group: str = "source"
) -> list[dict[str, Any]]:
    """Rows of (group keys, cohort_date, spend, new_users, revenue: one Decimal per offset in ``days``).

    Ordered by cohort date, then biggest spend first.
    """
    if group not in MATRIX_GROUPS:
        raise ValueError(f"matrix group {group!r}: one of {', '.join(MATRIX_GROUPS)}")
    if not days or len(days) > MAX_DAYS or any(not 0 <= n <= MAX_OFFSET for n in days):
        raise ValueError(f"days: 1 to {MAX_DAYS} offsets, each in 0..{MAX_OFFSET}")
    keys = (*GROUPS[group], "cohort_date")
    clause, params = filter_where(f)
    inner = (
        f"SELECT e.*, m.by_day AS by_day FROM ({enriched_sql(db)}) AS e LEFT JOIN ({_money_by_day(db)}) AS m "
        "ON m.source_kind = e.source_kind AND m.source_id = e.source_id AND m.cohort_date = e.cohort_date"
    )
    rest = ", ".join(k for k in keys if k != "cohort_date")
    sql = (
        f"SELECT {', '.join(keys)}, sum(spend) AS spend, sum(new_users) AS new_users, "
        f"sumForEach(by_day) AS revenue FROM ({inner}){clause} "
        f"GROUP BY {', '.join(keys)} ORDER BY cohort_date, spend DESC, {rest}"
    )
    rows = typed(run(client, sql, {**params, "p_days": list(days)}))
    for row in rows:
        sums = [Decimal(v) for v in row["revenue"]]
        # a group with no money at all sums empty arrays: zero at every offset
        row["revenue"] = sums + [Decimal(0)] * (len(days) - len(sums))
    return rows
