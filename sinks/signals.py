"""Business signals for alerting, computed by ClickHouse: bounded sets, never per user.

Read by the watcher (streams/watcher.py) every few seconds: today's top
campaigns by spend with their D0 ROI and new users, their spend and new users in
the trailing hour, today's organic share, users by attribution touch, and net
revenue by platform and source kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from clickhouse_connect.driver.client import Client

from sinks.analytics import RoiFilter, roi_grouped
from sinks.sql import query_dicts


@dataclass
class CampaignSignal:
    campaign_id: str
    platform: str
    spend_today: Decimal
    revenue_d0_today: Decimal
    new_users_today: int
    spend_1h: Decimal = Decimal(0)
    new_users_1h: int = 0


@dataclass
class Signals:
    campaigns: list[CampaignSignal] = field(default_factory=list)
    new_users_today: int = 0
    organic_today: int = 0
    users_by_touch: dict[str, int] = field(default_factory=dict)
    revenue: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (platform, source_kind) -> net


def read_signals(client: Client, db: str, today: date, now_us: int, top: int) -> Signals:
    """Today's figures (local ``today``), the trailing hour before ``now_us``, at most ``top`` campaigns."""
    out = Signals()
    rows = roi_grouped(client, db, RoiFilter(date_from=today, date_to=today, source_kind="campaign"), "campaign")
    for row in rows[:top]:
        out.campaigns.append(
            CampaignSignal(
                row["source_id"], row["platform"] or "unknown", row["spend"], row["revenue_d0"], row["new_users"]
            )
        )
    ids = [c.campaign_id for c in out.campaigns]
    hour_ago = now_us - 3_600_000_000
    if ids:
        params = {"ids": ids, "since": hour_ago}
        spend = query_dicts(
            client,
            f"SELECT campaign_id, sum(value) AS v FROM {db}.spend FINAL WHERE campaign_id IN {{ids:Array(String)}} "
            "AND period_start >= fromUnixTimestamp64Micro({since:Int64}) GROUP BY campaign_id",
            params,
            "spend signal",
        )
        users = query_dicts(
            client,
            f"SELECT source_id, count() AS n FROM {db}.users FINAL WHERE source_kind = 'campaign' "
            "AND source_id IN {ids:Array(String)} AND acquired >= fromUnixTimestamp64Micro({since:Int64}) "
            "GROUP BY source_id",
            params,
            "new users signal",
        )
        spend_by = {r["campaign_id"]: Decimal(r["v"]) for r in spend}
        users_by = {r["source_id"]: int(r["n"]) for r in users}
        for c in out.campaigns:
            c.spend_1h = spend_by.get(c.campaign_id, Decimal(0))
            c.new_users_1h = users_by.get(c.campaign_id, 0)
    for row in query_dicts(
        client,
        f"SELECT touch, source_kind, cohort_date = {{today:Date32}} AS today, count() AS n FROM {db}.users FINAL "
        "GROUP BY touch, source_kind, today",
        {"today": today},
        "users signal",
    ):
        out.users_by_touch[row["touch"]] = out.users_by_touch.get(row["touch"], 0) + int(row["n"])
        if row["today"]:
            out.new_users_today += int(row["n"])
            if row["source_kind"] == "organic":
                out.organic_today += int(row["n"])
    for row in query_dicts(
        client,
        f"SELECT m.source_kind AS kind, if(m.source_kind = 'campaign', if(c.platform = '', 'unknown', c.platform), "
        f"m.source_kind) AS platform, sum(m.value) AS v FROM {db}.money AS m FINAL "
        f"LEFT JOIN (SELECT campaign_id, platform FROM {db}.campaigns FINAL) AS c ON c.campaign_id = m.source_id "
        "GROUP BY kind, platform",
        {},
        "revenue signal",
    ):
        out.revenue[(row["platform"], row["kind"])] = Decimal(row["v"])
    return out
