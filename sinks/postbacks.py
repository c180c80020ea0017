"""The postback ledger (SPEC 7) as people read it, computed by ClickHouse.

Two readers, both plain SQL over ``postback_decisions`` and ``postback_deliveries``
(``infra/clickhouse/0010_postbacks.sql``), read with FINAL and retracted rows
left out:

- ``ledger_rows``: every decision with what the sender did with it, by the
  idempotency key. Its ``status`` is the decision when the rule held it back or
  it was superseded (``held_kind``, ``held_min_amount``, ``held_ratio``,
  ``superseded``), else the delivery's (``sending``, ``sent``, ``failed``), and
  ``pending`` while the sender has written nothing for it yet.
- ``summary_rows``: per campaign, the true conversions beside the reported
  ones. True activations are the users the campaign acquired (``users``) and
  true pays their counted payments (``money`` kind ``payment``): the rows the
  ROI report counts as ``new_users`` and ``payers`` (``roi_cohorts`` in
  ``0002_report_views.sql``), never changed by postbacks.

A campaign's buyer is its ``buyer_id`` in ``campaigns``; ``buyer_id`` in a
filter keeps only that buyer's campaigns (a decision for a campaign that is not
configured has no buyer, so only an admin's unscoped read shows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.sql import query_dicts, where

HELD = ("held_kind", "held_min_amount", "held_ratio")
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")  # of a ``send`` decision
STATUSES = (*DELIVERY_STATUSES, *HELD, "superseded")
KINDS = ("activate", "pay")
SUMMARY_COUNTS = (
    "activations", "pays", "decided_send", "sent", "sent_activations", "sent_pays", "pending", "sending", "failed",
    *HELD, "superseded", "superseded_sent",
)  # fmt: skip
SUMMARY_MONEY = ("pay_value", "sent_pay_value")
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class LedgerFilter:
    """Which decisions: ``since_us`` is the conversion's time (microseconds), at or after."""

    campaign_id: str | None = None
    status: str | None = None
    kind: str | None = None
    since_us: int | None = None
    buyer_id: str | None = None


def _buyer_campaigns(db: str) -> str:
    return f"campaign_id IN (SELECT campaign_id FROM {db}.campaigns FINAL WHERE buyer_id = {{p_buyer:String}})"


def _decisions_where(db: str, f: LedgerFilter) -> tuple[str, dict[str, Any]]:
    """The filter on the decisions themselves (before the join), with its parameters."""
    decision = None if f.status is None else "send" if f.status in DELIVERY_STATUSES else f.status
    clause, params = where(
        ("campaign_id = {p_campaign:String}", "p_campaign", f.campaign_id),
        ("kind = {p_kind:String}", "p_kind", f.kind),
        ("decision = {p_decision:String}", "p_decision", decision),
        ("conversion_ts >= fromUnixTimestamp64Micro({p_since:Int64})", "p_since", f.since_us),
        (_buyer_campaigns(db), "p_buyer", f.buyer_id),
    )
    return " WHERE is_deleted = 0" + clause.replace(" WHERE ", " AND ", 1), params


def _ledger_sql(db: str, f: LedgerFilter) -> tuple[str, dict[str, Any]]:
    clause, params = _decisions_where(db, f)
    sql = f"""
        SELECT
            d.key AS key, d.campaign_id AS campaign_id, c.c_name AS name, c.c_buyer AS buyer_id,
            d.platform AS platform, d.kind AS kind, d.user_id AS user_id, d.order_id AS order_id, d.amount AS amount,
            toUnixTimestamp64Micro(d.conversion_ts) AS conversion_us, toUnixTimestamp64Micro(d.decided_ts) AS decided_us,
            d.decision AS decision, d.detail AS detail,
            multiIf(d.decision != 'send', d.decision, s.s_key = '', 'pending', s.s_status) AS status,
            if(s.s_key = '', '', s.s_status) AS delivery, s.s_attempts AS attempts, s.s_answer AS last_answer,
            if(s.s_key = '', NULL, toUnixTimestamp64Micro(s.s_last)) AS last_attempt_us,
            d.click_event_id AS click_event_id, d.callback AS callback
        FROM (
            SELECT key, platform, campaign_id, click_event_id, callback, user_id, order_id, kind, amount,
                conversion_ts, decided_ts, decision, detail
            FROM {db}.postback_decisions FINAL{clause}
        ) AS d
        LEFT JOIN (
            SELECT key AS s_key, status AS s_status, attempts AS s_attempts, last_answer AS s_answer,
                last_attempt AS s_last
            FROM {db}.postback_deliveries FINAL
        ) AS s ON s.s_key = d.key
        LEFT JOIN (
            SELECT campaign_id AS c_id, name AS c_name, buyer_id AS c_buyer FROM {db}.campaigns FINAL
        ) AS c ON c.c_id = d.campaign_id
    """
    return sql, params


def ledger_rows(client: Client, db: str, f: LedgerFilter, limit: int = 1000) -> list[dict[str, Any]]:
    """Decisions, latest decided first (then by key), at most ``limit``; amounts exact."""
    if not 0 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 0 to {MAX_LIMIT:,}")
    inner, params = _ledger_sql(db, f)
    outer, status_params = where(("status = {p_status:String}", "p_status", f.status))
    sql = f"SELECT * FROM ({inner}){outer} ORDER BY decided_us DESC, key LIMIT {{p_limit:UInt32}}"
    rows = query_dicts(client, sql, {**params, **status_params, "p_limit": limit}, "postback ledger query")
    for row in rows:
        row["amount"] = Decimal(row["amount"])
        row["attempts"] = int(row["attempts"] or 0)
    return rows


def summary_rows(
    client: Client, db: str, campaign_id: str | None = None, since_us: int | None = None, buyer_id: str | None = None
) -> list[dict[str, Any]]:
    """Per campaign with a true conversion or a decision: true activations and pays against the ledger.

    ``decided_send`` counts the live ``send`` decisions; ``sent`` those the
    platform accepted (``sent_activations`` + ``sent_pays``, and
    ``sent_pay_value`` their amounts); ``pending`` and ``sending`` the ones on
    their way; ``failed`` those given up; ``held_*`` what each part of the rule
    held back; ``superseded`` decisions whose user moved to another source, of
    which ``superseded_sent`` had already reached the platform (SPEC 7: a
    postback is never unsent). ``since_us`` counts only conversions at or
    after it, on both sides.
    """
    f = LedgerFilter(campaign_id=campaign_id, since_us=since_us, buyer_id=buyer_id)
    ledger, params = _ledger_sql(db, f)
    since = "fromUnixTimestamp64Micro({p_since:Int64})"
    true_users, true_pays = "", ""
    if since_us is not None:
        true_users, true_pays = f" AND acquired >= {since}", f" AND ts >= {since}"
    if campaign_id is not None:
        true_users += " AND source_id = {p_campaign:String}"
        true_pays += " AND source_id = {p_campaign:String}"
    scoped = ""
    if buyer_id is not None:
        scoped = " WHERE c.c_buyer = {p_buyer:String}"
    counted = ", ".join(f"countIf(status = '{s}') AS {s}" for s in (*DELIVERY_STATUSES, *HELD, "superseded"))
    sql = f"""
        WITH
            t AS (
                SELECT source_id AS t_id, count() AS activations FROM {db}.users FINAL
                WHERE is_deleted = 0 AND source_kind = 'campaign'{true_users} GROUP BY source_id
            ),
            p AS (
                SELECT source_id AS p_id, count() AS pays, sum(value) AS pay_value FROM {db}.money FINAL
                WHERE is_deleted = 0 AND source_kind = 'campaign' AND kind = 'payment'{true_pays} GROUP BY source_id
            ),
            l AS (
                SELECT campaign_id AS l_id, countIf(decision = 'send') AS decided_send,
                    countIf(status = 'sent' AND kind = 'activate') AS sent_activations,
                    countIf(status = 'sent' AND kind = 'pay') AS sent_pays,
                    sumIf(amount, status = 'sent' AND kind = 'pay') AS sent_pay_value,
                    countIf(decision = 'superseded' AND delivery = 'sent') AS superseded_sent, {counted}
                FROM ({ledger}) GROUP BY campaign_id
            ),
            k AS (
                SELECT t_id AS campaign_id FROM t UNION DISTINCT SELECT p_id FROM p UNION DISTINCT SELECT l_id FROM l
            )
        SELECT k.campaign_id AS campaign_id, c.c_name AS name, c.c_platform AS platform, c.c_buyer AS buyer_id,
            t.activations AS activations, p.pays AS pays, p.pay_value AS pay_value, l.decided_send AS decided_send,
            l.sent AS sent, l.sent_activations AS sent_activations, l.sent_pays AS sent_pays,
            l.sent_pay_value AS sent_pay_value, l.pending AS pending, l.sending AS sending, l.failed AS failed,
            {", ".join(f"l.{h} AS {h}" for h in HELD)}, l.superseded AS superseded, l.superseded_sent AS superseded_sent
        FROM k
        LEFT JOIN t ON t.t_id = k.campaign_id
        LEFT JOIN p ON p.p_id = k.campaign_id
        LEFT JOIN l ON l.l_id = k.campaign_id
        LEFT JOIN (
            SELECT campaign_id AS c_id, name AS c_name, platform AS c_platform, buyer_id AS c_buyer
            FROM {db}.campaigns FINAL
        ) AS c ON c.c_id = k.campaign_id{scoped}
        ORDER BY campaign_id
    """
    rows = query_dicts(client, sql, params, "postback summary query")
    for row in rows:
        for name in SUMMARY_COUNTS:
            row[name] = int(row[name] or 0)
        for name in SUMMARY_MONEY:
            row[name] = Decimal(row[name] or 0)
    return rows


def summary_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of every count and amount of summary rows."""
    totals: dict[str, Any] = {name: sum(r[name] for r in rows) for name in SUMMARY_COUNTS}
    totals.update({name: sum((r[name] for r in rows), Decimal(0)) for name in SUMMARY_MONEY})
    return totals
