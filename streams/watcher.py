"""The business watcher: exports bounded business signals from ClickHouse as gauges.

Runs in every worker and in ``reelroi serve``; several instances export the same
series, so the alert rules aggregate with ``max by (campaign_id)``. The gauges
live in the ``BUSINESS`` registry: served only behind ``REELROI_METRICS_TOKEN``
(streams/metrics.py), never on the open ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from prometheus_client import Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.policy import Policy
from sinks.signals import Signals, read_signals
from streams.metrics import BUSINESS

log = logging.getLogger("reelroi.watcher")

_C = ["campaign_id", "platform"]
SPEND_TODAY = Gauge(
    "reelroi_campaign_spend_today", "Spend today (reporting currency), top campaigns", _C, registry=BUSINESS
)
ROI_D0_TODAY = Gauge(
    "reelroi_campaign_roi_d0_today", "D0 ROI of today's cohort, top campaigns with spend", _C, registry=BUSINESS
)
REDIRECTS_TODAY = Gauge(
    "reelroi_campaign_redirects_today", "Users acquired today, top campaigns", _C, registry=BUSINESS
)
SPEND_1H = Gauge(
    "reelroi_campaign_spend_1h", "Spend of campaign-hours starting in the trailing hour", _C, registry=BUSINESS
)
REDIRECTS_1H = Gauge("reelroi_campaign_redirects_1h", "Users acquired in the trailing hour", _C, registry=BUSINESS)
ROI_FLOOR = Gauge("reelroi_campaign_roi_floor", "The D0 ROI floor set for the campaign", _C, registry=BUSINESS)
ORGANIC_SHARE = Gauge("reelroi_organic_share", "Organic share of today's new users (0-1)", registry=BUSINESS)
NEW_USERS_TODAY = Gauge("reelroi_new_users_today", "New users today, all sources", registry=BUSINESS)
USERS = Gauge("reelroi_users", "Acquired users by attribution touch", ["touch"], registry=BUSINESS)
REVENUE = Gauge(
    "reelroi_revenue_attributed",
    "Net revenue attributed (reporting currency)",
    ["platform", "source_kind"],
    registry=BUSINESS,
)
LAST_SUCCESS = Gauge(
    "reelroi_watcher_last_success_timestamp_seconds", "Unix time of the last signal refresh", registry=BUSINESS
)
_TOUCH = {"view": "view_through"}
_PER_CAMPAIGN = (SPEND_TODAY, ROI_D0_TODAY, REDIRECTS_TODAY, SPEND_1H, REDIRECTS_1H, ROI_FLOOR)


class WatchSettings(BaseSettings):
    """``REELROI_WATCH_*``: how often, how many campaigns, and the ROI floors."""

    model_config = SettingsConfigDict(env_prefix="REELROI_WATCH_", extra="ignore")

    interval_s: float = 30.0  # 0 turns the watcher off
    top: int = Field(default=20, ge=1, le=500)
    roi_floor: float = 0.3  # D0 ROI below this while spending opens a ticket (ReelroiCampaignRoiBelowFloor)
    floors: dict[str, float] = {}  # per campaign, JSON: {"c1": 0.5}


def export(signals: Signals, settings: WatchSettings, now: float) -> None:
    for gauge in _PER_CAMPAIGN:
        gauge.clear()  # a campaign that left the top N must not keep its last value
    for c in signals.campaigns:
        labels = (c.campaign_id, c.platform)
        SPEND_TODAY.labels(*labels).set(float(c.spend_today))
        REDIRECTS_TODAY.labels(*labels).set(c.new_users_today)
        SPEND_1H.labels(*labels).set(float(c.spend_1h))
        REDIRECTS_1H.labels(*labels).set(c.new_users_1h)
        ROI_FLOOR.labels(*labels).set(settings.floors.get(c.campaign_id, settings.roi_floor))
        if c.spend_today > 0:
            ROI_D0_TODAY.labels(*labels).set(float(c.revenue_d0_today / c.spend_today))
    NEW_USERS_TODAY.set(signals.new_users_today)
    ORGANIC_SHARE.set(signals.organic_today / signals.new_users_today if signals.new_users_today else 0.0)
    USERS.clear()
    for touch, n in signals.users_by_touch.items():
        USERS.labels(_TOUCH.get(touch, touch)).inc(n)
    REVENUE.clear()
    for (platform, kind), value in signals.revenue.items():
        REVENUE.labels(platform, kind).set(float(value))
    LAST_SUCCESS.set(now)


class Watcher(threading.Thread):
    """Refreshes the gauges every ``interval_s`` (a daemon thread; ``lock`` guards the client)."""

    def __init__(self, client: Any, db: str, policy: Policy, lock: threading.Lock, settings: WatchSettings) -> None:
        super().__init__(name="reelroi-watcher", daemon=True)
        self.client, self.db, self.policy, self.lock, self.settings = client, db, policy, lock, settings
        self.stopped = threading.Event()

    def refresh(self) -> None:
        now = time.time()
        today = datetime.fromtimestamp(now, self.policy.zone).date()
        with self.lock:
            signals = read_signals(self.client, self.db, today, int(now * 1_000_000), self.settings.top)
        export(signals, self.settings, now)

    def run(self) -> None:
        while not self.stopped.wait(self.settings.interval_s):
            try:
                self.refresh()
            except Exception:
                log.exception("business signals refresh failed")

    def stop(self) -> None:
        self.stopped.set()


def start_watcher(client: Any, db: str, policy: Policy, lock: threading.Lock) -> Watcher | None:
    settings = WatchSettings()
    if settings.interval_s <= 0:
        return None
    watcher = Watcher(client, db, policy, lock, settings)
    watcher.start()
    return watcher
