"""The events of SPEC section 2, as frozen pydantic v2 models.

Unknown extra fields are ignored; ``null`` counts as absent (the decoder drops
null values before validation, so a null required field is "missing").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, StringConstraints, WithJsonSchema, model_validator

from schemas.fields import CalendarDate, Currency, Id, Instant, Money, Rate, SchemaVersion, Timestamp

CURRENT_SCHEMA_VERSION = 1

Platform = Literal["douyin", "kuaishou", "tencent", "tiktok", "other"]
Host = Literal["wechat", "douyin", "app"]
PaymentKind = Literal["unlock", "recharge", "subscription"]
POSTBACK_KINDS = ("activate", "first_pay", "every_pay")


def _postback_kinds(value: object) -> tuple[str, ...]:
    # one error for the whole list: pydantic would build one per bad item (a 1 MiB list of
    # bad items cost hundreds of MB of error objects)
    if type(value) is not list:
        raise ValueError("kinds must be an array")
    if not all(type(k) is str and k in POSTBACK_KINDS for k in value):
        raise ValueError(f"kinds must hold only {', '.join(POSTBACK_KINDS)}")
    return tuple(value)


PostbackKinds = Annotated[
    tuple[str, ...],
    PlainValidator(_postback_kinds),
    WithJsonSchema({"type": "array", "items": {"enum": list(POSTBACK_KINDS)}}),
]
Callback = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=4096)]


class Event(BaseModel):
    """Fields every event has."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    type: str
    event_id: Id
    ts: Timestamp
    schema_version: SchemaVersion = CURRENT_SCHEMA_VERSION


class Campaign(Event):
    """Configuration of an ad campaign (upsert by ``campaign_id``)."""

    type: Literal["campaign"]
    campaign_id: Id
    platform: Platform
    drama_id: Id
    buyer_id: Id
    name: str | None = None


class PromotionPlan(Event):
    """Configuration of a creator promotion plan (upsert by ``plan_id``)."""

    type: Literal["promotion_plan"]
    plan_id: Id
    creator_id: Id
    drama_id: Id
    commission_rate: Rate

    @model_validator(mode="after")
    def _rate_is_a_share(self) -> PromotionPlan:
        if self.commission_rate > 1:
            raise ValueError("commission_rate must be in [0, 1]")
        return self


class FxRate(Event):
    """Reporting-currency units per 1 unit of ``currency`` from ``effective_date`` on."""

    type: Literal["fx_rate"]
    currency: Currency
    rate: Rate
    effective_date: CalendarDate

    @model_validator(mode="after")
    def _rate_is_positive(self) -> FxRate:
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        return self


class PostbackRule(Event):
    """Which conversions of a campaign are posted back to its platform (SPEC 7; upsert by ``campaign_id``)."""

    type: Literal["postback_rule"]
    campaign_id: Id
    kinds: PostbackKinds
    min_amount: Money | None = None
    send_ratio: Rate

    @model_validator(mode="after")
    def _ratio_is_a_share(self) -> PostbackRule:
        if self.send_ratio > 1:
            raise ValueError("send_ratio must be in [0, 1]")
        return self


class AdSpend(Event):
    """The cost of one campaign-hour; restated by a later event for the same hour."""

    type: Literal["ad_spend"]
    campaign_id: Id
    period_start: Timestamp
    amount: Money
    currency: Currency

    @model_validator(mode="after")
    def _hour_aligned(self) -> AdSpend:
        start: datetime = self.period_start
        finer = isinstance(start, Instant)  # digits beyond the microsecond, not all zero
        if start.minute or start.second or start.microsecond or finer:
            raise ValueError("period_start must be hour-aligned in its own offset")
        return self


class Impression(Event):
    """An ad shown on a device."""

    type: Literal["impression"]
    campaign_id: Id
    device_id: Id


class Click(Event):
    """An ad click (``campaign_id``) or a creator-clip click (``plan_id``): exactly one of them."""

    type: Literal["click"]
    click_id: Id
    device_id: Id
    campaign_id: Id | None = None
    plan_id: Id | None = None
    callback: Callback | None = None  # the platform's conversion token for this click (SPEC 7)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Click:
        if (self.campaign_id is None) == (self.plan_id is None):
            raise ValueError("click needs exactly one of campaign_id or plan_id")
        return self


class Redirect(Event):
    """The user landed in the mini-program or app."""

    type: Literal["redirect"]
    user_id: Id
    app_id: Id
    host: Host
    click_id: Id | None = None
    device_id: Id | None = None


class Payment(Event):
    """IAP revenue; unique by ``order_id``."""

    type: Literal["payment"]
    order_id: Id
    user_id: Id
    drama_id: Id
    amount: Money
    currency: Currency
    kind: PaymentKind


class AdUnlock(Event):
    """IAA: an episode unlocked by a rewarded ad, with its estimated revenue."""

    type: Literal["ad_unlock"]
    user_id: Id
    drama_id: Id
    revenue: Money
    currency: Currency


class Refund(Event):
    """Part or all of a payment returned."""

    type: Literal["refund"]
    order_id: Id
    amount: Money
    currency: Currency


AnyEvent = (
    Campaign
    | PromotionPlan
    | FxRate
    | PostbackRule
    | AdSpend
    | Impression
    | Click
    | Redirect
    | Payment
    | AdUnlock
    | Refund
)

EVENT_TYPES: dict[str, type[Event]] = {
    "campaign": Campaign,
    "promotion_plan": PromotionPlan,
    "fx_rate": FxRate,
    "postback_rule": PostbackRule,
    "ad_spend": AdSpend,
    "impression": Impression,
    "click": Click,
    "redirect": Redirect,
    "payment": Payment,
    "ad_unlock": AdUnlock,
    "refund": Refund,
}
