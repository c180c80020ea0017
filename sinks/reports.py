"""The reports of SPEC section 5, computed by ClickHouse over the fact tables.

Aggregation happens in SQL (views ``roi_cohorts`` and ``commission_daily``);
Python only divides for ROI and rounds for display.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from attribution.outputs import STATE_KEY_PREFIX
from schemas.decode import decode
from schemas.events import FxRate
from sinks.sql import query_dicts, where

ROI_MONEY = (
    "spend", "revenue_iap", "revenue_iaa", "refunds", "revenue_d0", "revenue_d1", "revenue_d3", "revenue_d7",
    "revenue_total", "commission",
)  # fmt: skip
ROI_COLUMNS = ("source_kind", "source_id", "cohort_date", "spend", "new_users", "payers", *ROI_MONEY[1:])
COMMISSION_COLUMNS = ("creator_id", "plan_id", "date", "gross", "refunds", "net", "commission")


def _query(client: Client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    return query_dicts(client, sql, parameters, "report query")


def roi_rows(
    client: Client,
    db: str,
    date_from: date | None = None,
    date_to: date | None = None,
    source_kind: str | None = None,
) -> list[dict[str, Any]]:
    """ROI by (source_kind, source_id, cohort_date), money as exact Decimals (ROI not yet divided)."""
    clause, params = where(
        ("cohort_date >= {date_from:Date32}", "date_from", date_from),
        ("cohort_date <= {date_to:Date32}", "date_to", date_to),
        ("source_kind = {source_kind:String}", "source_kind", source_kind),
    )
    sql = f"SELECT {', '.join(ROI_COLUMNS)} FROM {db}.roi_cohorts{clause}"
    sql += " ORDER BY source_kind, source_id, cohort_date"
    rows = _query(client, sql, params)
    for row in rows:
        for name in ROI_MONEY:
            row[name] = Decimal(row[name] or 0)
        row["new_users"] = int(row["new_users"] or 0)
        row["payers"] = int(row["payers"] or 0)
    return rows


def commission_rows(
    client: Client,
    db: str,
    creator_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[dict[str, Any]]:
    """Commission by (creator_id, plan_id, date)."""
    clause, params = where(
        ("creator_id = {creator_id:String}", "creator_id", creator_id),
        ("date >= {date_from:Date32}", "date_from", date_from),
        ("date <= {date_to:Date32}", "date_to", date_to),
    )
    sql = f"SELECT {', '.join(COMMISSION_COLUMNS)} FROM {db}.commission_daily{clause}"
    sql += " ORDER BY creator_id, plan_id, date"
    rows = _query(client, sql, params)
    for row in rows:
        for name in ("gross", "refunds", "net", "commission"):
            row[name] = Decimal(row[name])
    return rows


def clawback_by_day(
    client: Client, db: str, creator_id: str | None, date_from: date | None, date_to: date | None, plan_id: str | None
) -> list[dict[str, Any]]:
    """Per local date: refunded sales of plans (positive) and the commission they took back (negative, exact)."""
    clause, params = where(
        ("creator_id = {p_creator:String}", "p_creator", creator_id),
        ("source_id = {p_plan:String}", "p_plan", plan_id),
        ("date >= {p_from:Date32}", "p_from", date_from),
        ("date <= {p_to:Date32}", "p_to", date_to),
    )
    extra = clause.replace(" WHERE ", " AND ", 1)
    sql = (
        "SELECT date, -sum(value) AS refunds, sum(commission) AS clawback "
        f"FROM {db}.money FINAL WHERE source_kind = 'plan' AND creator_id != '' AND kind = 'refund'{extra} "
        "GROUP BY date ORDER BY date"
    )
    rows = _query(client, sql, params)
    return [{"date": r["date"], "refunds": Decimal(r["refunds"]), "clawback": Decimal(r["clawback"])} for r in rows]


FACT_TYPES = ("ad_spend", "impression", "click", "redirect", "payment", "ad_unlock", "refund")


def as_of_us(client: Client, db: str) -> int | None:
    """SPEC 5's ``as_of``: the greatest ``ts`` of an accepted fact event (microseconds), None if none.

    Accepted: in the event log (the first copy of its event_id, structurally
    valid) and not rejected for what other events say (``no_fx_rate``,
    ``unknown_order``, ``refund_exceeds_payment``).
    """
    rows = _query(
        client,
        f"SELECT toUnixTimestamp64Micro(max(ts)) AS us, count() AS n FROM {db}.events FINAL "
        "WHERE type IN {types:Array(String)} AND event_id NOT IN "
        f"(SELECT event_id FROM {db}.rejections FINAL WHERE startsWith(key, '{STATE_KEY_PREFIX}'))",
        {"types": list(FACT_TYPES)},
    )
    return int(rows[0]["us"]) if rows and rows[0]["n"] else None


def rates_quoting(client: Client, db: str, currency: str) -> int:
    """How many logged ``fx_rate`` events give ``currency`` a rate other than 1.

    Rates are reporting-currency units per unit of their currency, so a rate
    for the reporting currency itself is ignored (SPEC 3.6). One that is not 1
    (``USD 7.1`` while reporting in USD) says the rates were quoted against
    another currency, and every other rate is then read in the wrong unit.
    """
    rows = _query(
        client,
        f"SELECT raw FROM {db}.events FINAL WHERE type = 'fx_rate' "
        "AND JSONExtractString(raw, 'currency') = {currency:String}",
        {"currency": currency},
    )
    found = 0
    for row in rows:
        raw = row["raw"] if isinstance(row["raw"], bytes) else str(row["raw"]).encode()
        event = decode(raw)
        if isinstance(event, FxRate) and event.rate != 1:
            found += 1
    return found


def rejection_counts(client: Client, db: str) -> dict[str, Any]:
    """``{"rejected": {reason: count}, "duplicates": count}``."""
    rejected = _query(
        client, f"SELECT reason, count() AS n FROM {db}.rejections FINAL GROUP BY reason ORDER BY reason", {}
    )
    duplicates = _query(client, f"SELECT count() AS n FROM {db}.duplicates FINAL", {})
    return {
        "rejected": {row["reason"]: int(row["n"]) for row in rejected},
        "duplicates": int(duplicates[0]["n"]) if duplicates else 0,
    }


def recent_rejections(client: Client, db: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest rejected records with their reason and original bytes, for operators.

    A rejection found late (``no_fx_rate``, ``unknown_order``, …: key ``event:<id>``)
    comes from a stage that keeps no raw bytes, so its ``raw`` may be empty: the
    bytes are those of the event log row with its event_id.
    """
    return _query(
        client,
        f"""
        WITH r AS (
            SELECT key, reason, detail, event_id, type, origin, raw, version FROM {db}.rejections FINAL
            ORDER BY version DESC LIMIT {{limit:UInt32}}
        )
        SELECT r.reason AS reason, r.detail AS detail, r.event_id AS event_id, r.type AS type, r.origin AS origin,
            if(r.raw = '' AND startsWith(r.key, '{STATE_KEY_PREFIX}'), e.raw, r.raw) AS raw
        FROM r
        LEFT JOIN (
            SELECT event_id, raw FROM {db}.events FINAL
            WHERE event_id IN (SELECT event_id FROM r WHERE raw = '' AND startsWith(key, '{STATE_KEY_PREFIX}'))
        ) AS e ON e.event_id = r.event_id
        ORDER BY r.version DESC
        """,
        {"limit": limit},
    )
