"""What the engine emits: keyed upserts that a sink can write idempotently.

Every row has a natural key (an event_id, a user_id, an origin, a campaign
hour). Writing the same row twice is harmless, and a later row for the same key
replaces the earlier one; ``active=False`` retracts a row that no longer holds
(a payment that turned out to be a duplicate of an earlier one, say).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

# Keys of rows that depend on engine state (not on one input line): retractable.
STATE_KEY_PREFIX = "event:"
ORDER_KEY_PREFIX = "order:"
EVENT_ID_DUPLICATE = "event_id"
ORDER_DUPLICATE = "order_id"


class LoggedEvent(NamedTuple):
    """An accepted-for-processing event (first copy of its event_id), for the event log."""

    event_id: str
    type: str
    ts_us: int
    origin: str
    raw: bytes


class Rejection(NamedTuple):
    """A rejected record. ``key`` is the origin for structural rejections (each copy
    counts) and ``event:<event_id>`` for rejections that depend on other events."""

    key: str
    reason: str
    detail: str
    event_id: str
    type: str
    origin: str
    raw: bytes
    active: bool = True

    @property
    def structural(self) -> bool:
        """Rejected for what the line itself is (every copy counts), not for other events."""
        return not self.key.startswith(STATE_KEY_PREFIX)


class Duplicate(NamedTuple):
    """An ignored copy: by ``event_id`` (key = origin) or by ``order_id`` (key = ``order:<event_id>``)."""

    key: str
    kind: str
    event_id: str
    origin: str
    active: bool = True


class UserFact(NamedTuple):
    """A user's acquisition: source and cohort date (SPEC 3.1-3.3)."""

    user_id: str
    source_kind: str
    source_id: str
    touch: str  # click_id | device | view | organic | no_redirect
    cohort_date: dt.date
    acquired_us: int
    active: bool = True


class MoneyFact(NamedTuple):
    """One unit of money credited to a source: a payment, an ad unlock or a refund.

    ``value`` is in the reporting currency and signed (refunds negative);
    ``commission`` likewise.
    """

    event_id: str
    kind: str  # payment | ad_unlock | refund
    user_id: str
    order_id: str
    ts_us: int
    date: dt.date
    source_kind: str
    source_id: str
    cohort_date: dt.date
    currency: str
    amount: Decimal
    rate: Decimal
    value: Decimal
    creator_id: str
    commission: Decimal
    active: bool = True


class SpendFact(NamedTuple):
    """The counted spend of one campaign-hour."""

    campaign_id: str
    period_us: int
    date: dt.date
    event_id: str
    currency: str
    amount: Decimal
    rate: Decimal
    value: Decimal
    active: bool = True


class PostbackDecision(NamedTuple):  # fact kind "postback", table postback_decisions, key (key,)
    """What the postback stage decided about one conversion of one click (SPEC 7)."""

    key: str  # idempotency key: sha256 hex of f"{platform}|{callback}|{kind}|{order_id or user_id}"
    platform: str  # oceanengine | tencent | kuaishou | "" (the campaign's platform has no sender)
    campaign_id: str
    click_event_id: str
    callback: str
    user_id: str
    order_id: str  # "" for activate
    kind: str  # activate | pay
    amount: Decimal  # reporting currency; 0 for activate
    conversion_us: int  # the conversion's ts, microseconds
    decided_us: int  # the data clock when it was decided, microseconds
    decision: str  # send | held_kind | held_min_amount | held_ratio | superseded
    detail: str  # which part of the rule, in words
    active: bool = True


class PostbackDelivery(NamedTuple):  # fact kind "delivery", table postback_deliveries, key (key,)
    """What the sender did with one ``send`` decision, by its key."""

    key: str
    status: str  # sending | sent | failed
    attempts: int
    last_answer: str  # e.g. "200 code=0 success", "503", "timeout"
    last_attempt_us: int


class CampaignRow(NamedTuple):
    campaign_id: str
    platform: str
    drama_id: str
    buyer_id: str
    name: str


class PlanRow(NamedTuple):
    plan_id: str
    creator_id: str
    drama_id: str
    commission_rate: Decimal


class FxRow(NamedTuple):
    currency: str
    effective_date: dt.date
    rate: Decimal


@dataclass(slots=True)
class Outputs:
    """Everything one batch changed."""

    events: list[LoggedEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    users: list[UserFact] = field(default_factory=list)
    money: list[MoneyFact] = field(default_factory=list)
    spend: list[SpendFact] = field(default_factory=list)
    campaigns: list[CampaignRow] = field(default_factory=list)
    plans: list[PlanRow] = field(default_factory=list)
    fx: list[FxRow] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(getattr(self, name)) for name in self.__slots__)

    def extend(self, other: Outputs) -> None:
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))
