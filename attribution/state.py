"""The engine's memory between batches, keyed so it can be split and rebuilt.

Every store is a dict keyed by one natural key (user, order, click_id, device,
campaign-hour, currency); nothing depends on arrival order, so the state after
any set of events is the same whatever order they came in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from attribution.clock import TICKS_PER_SECOND
from attribution.orders import DUPLICATE, OrderResolution, PaymentRec, RefundRec, Verdict
from attribution.outputs import UserFact
from attribution.sources import Redirect, Touch

Version = tuple[int, str]


class UnlockRec(NamedTuple):
    ts: int  # ticks (attribution.clock): exact to 10^-18 s
    event_id: str
    revenue: Decimal
    currency: str
    date: date
    origin: str
    raw: bytes


class SpendRec(NamedTuple):
    ts: int  # ticks (attribution.clock): exact to 10^-18 s
    event_id: str
    period_us: int
    period_date: date
    amount: Decimal
    currency: str
    origin: str
    raw: bytes


class PlanConfig(NamedTuple):
    version: Version
    creator_id: str
    drama_id: str
    commission_rate: Decimal


class CampaignConfig(NamedTuple):
    version: Version
    platform: str
    drama_id: str
    buyer_id: str
    name: str


@dataclass(slots=True)
class UserState:
    redirect: Redirect | None = None
    orders: set[str] = field(default_factory=set)  # orders whose counted payment is this user's
    unlocks: list[UnlockRec] = field(default_factory=list)
    emitted: UserFact | None = None


@dataclass(slots=True)
class OrderState:
    payments: list[PaymentRec] = field(default_factory=list)
    refunds: list[RefundRec] = field(default_factory=list)
    resolution: OrderResolution | None = None
    owner: str | None = None  # user of the counted payment
    money_ids: frozenset[str] = frozenset()  # money facts currently emitted for this order


@dataclass(slots=True)
class SpendState:
    versions: list[SpendRec] = field(default_factory=list)
    counted: str | None = None


@dataclass(slots=True)
class EngineState:
    seen: set[str] = field(default_factory=set)
    users: dict[str, UserState] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)
    spend: dict[tuple[str, int], SpendState] = field(default_factory=dict)
    clicks_by_id: dict[str, list[Touch]] = field(default_factory=dict)
    clicks_by_device: dict[str, list[Touch]] = field(default_factory=dict)
    impressions_by_device: dict[str, list[Touch]] = field(default_factory=dict)
    # reverse indexes: which keys to recompute when a touch or a rate arrives
    users_by_click_id: dict[str, set[str]] = field(default_factory=dict)
    users_by_device: dict[str, set[str]] = field(default_factory=dict)
    users_by_plan: dict[str, set[str]] = field(default_factory=dict)
    orders_by_currency: dict[str, set[str]] = field(default_factory=dict)
    unlock_users_by_currency: dict[str, set[str]] = field(default_factory=dict)
    spend_by_currency: dict[str, set[tuple[str, int]]] = field(default_factory=dict)
    campaigns: dict[str, CampaignConfig] = field(default_factory=dict)
    plans: dict[str, PlanConfig] = field(default_factory=dict)
    # events that currently do not count (rejected or duplicate), by event_id
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def size(self, click_window_s: int) -> dict[str, int]:
        """Counts for the engine-state gauges. Walks every click: call it every few seconds.

        ``clicks_in_window`` counts clicks that could still explain a redirect arriving
        now, with "now" the newest click seen (a replay of history has no wall clock).
        """
        clicks = [t.ts for touches in self.clicks_by_id.values() for t in touches]
        newest = max(clicks, default=0)
        return {
            "users": len(self.users),
            "orders": len(self.orders),
            "clicks": len(clicks),
            "clicks_in_window": sum(1 for ts in clicks if ts >= newest - click_window_s * TICKS_PER_SECOND),
            "impressions": sum(len(v) for v in self.impressions_by_device.values()),
            "pending": sum(1 for v in self.verdicts.values() if v.reason != DUPLICATE),
        }
