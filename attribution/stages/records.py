"""What the stages hand each other: compact records, no raw bytes (the event log has them).

Each record names the key it is routed by (``route``): the stage topic's
partition is ``partition_of(route)``. Answers and order results carry the
version (input position) of the stage partition that computed them, so a
consumer keeps, per slot, the greatest one.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from attribution.orders import PaymentRec, RefundRec
from attribution.outputs import PostbackDecision
from attribution.sources import Touch

# Stage topics (the suffix after the prefix, e.g. ``reelroi.stage.user``).
TOUCH = "stage.touch"
ORDER = "stage.order"
USER = "stage.user"
SPEND = "stage.spend"
CONFIG = "stage.config"
POSTBACK = "stage.postback"  # conversions and callbacks, by the source click's event_id (SPEC 7)
POSTBACKS = "postbacks"  # the postback stage's ``send`` decisions, for the sender (reelroi postback)
FACTS = "facts"
STAGE_TOPICS = (TOUCH, ORDER, USER, SPEND, CONFIG, POSTBACK)
CONFIG_ROUTE = ""
FX, PLAN, CAMPAIGN, RULE = (
    "fx_rate",
    "promotion_plan",
    "campaign",
    "postback_rule",
)  # ConfigIn.kind  # the config stage has one partition: every config record goes to it


class TouchIn(NamedTuple):
    """A click or an impression, under one touch key (``d:<device>`` or ``k:<click_id>``)."""

    key: str
    ts: int
    event_id: str
    impression: bool
    source_kind: str
    source_id: str
    origin: str
    counts: bool  # its duplicates are counted under this key (the device copy), not under the other

    @property
    def route(self) -> str:
        return self.key[2:]


class RedirectAt(NamedTuple):
    """A redirect, told to a touch key it names, so that the key answers it."""

    key: str
    ts: int
    event_id: str
    user_id: str

    @property
    def route(self) -> str:
        return self.key[2:]


class RedirectIn(NamedTuple):
    user_id: str
    ts: int
    event_id: str
    click_id: str | None
    device_id: str | None
    origin: str

    @property
    def route(self) -> str:
        return self.user_id


class UnlockIn(NamedTuple):
    user_id: str
    ts: int
    event_id: str
    revenue: Decimal
    currency: str
    date: date
    origin: str

    @property
    def route(self) -> str:
        return self.user_id


class Answer(NamedTuple):
    """A touch key's answer for one redirect: the latest click (and impression) in its windows."""

    user_id: str
    redirect_id: str
    slot: str  # "k" (click_id) | "d" (device)
    version: int
    click: Touch | None
    impression: Touch | None

    @property
    def route(self) -> str:
        return self.user_id


class OrderResult(NamedTuple):
    """What an order means for one user it names: its counted payment and accepted refunds, or nothing."""

    user_id: str
    order_id: str
    version: int
    counted: PaymentRec | None
    rate: Decimal | None
    refunds: tuple[RefundRec, ...]

    @property
    def route(self) -> str:
        return self.user_id


class PaymentIn(NamedTuple):
    order_id: str
    rec: PaymentRec

    @property
    def route(self) -> str:
        return self.order_id


class RefundIn(NamedTuple):
    order_id: str
    rec: RefundRec

    @property
    def route(self) -> str:
        return self.order_id


class SpendIn(NamedTuple):
    campaign_id: str
    ts: int
    event_id: str
    period_us: int
    period_date: date
    amount: Decimal
    currency: str
    origin: str

    @property
    def route(self) -> str:
        return self.campaign_id


class ConfigIn(NamedTuple):
    """A configuration event (fx_rate, promotion_plan, campaign, postback_rule).

    ``key`` is its configuration key; ``values`` its fields in the order the
    stage reading it expects (see attribution.stages.config). Sent to the
    config stage by the router, and by the config stage to every partition of
    the stages that use it (``origin`` then empty).
    """

    kind: str
    key: str
    ts: int
    event_id: str
    values: tuple[str | Decimal | date | tuple[str, ...] | None, ...]
    origin: str

    @property
    def route(self) -> str:
        return CONFIG_ROUTE

    @property
    def version(self) -> tuple[int, str]:
        return (self.ts, self.event_id)


class CallbackIn(NamedTuple):
    """A campaign click that carries the platform's ``callback`` token (SPEC 7), for the postback stage."""

    click_event_id: str
    ts: int
    campaign_id: str
    callback: str
    origin: str

    @property
    def route(self) -> str:
        return self.click_event_id


class ConversionsIn(NamedTuple):
    """What a user acquired through a campaign click has converted, told to that click's key.

    ``campaign_id`` empty and no payments: the user's source moved away from
    this click (its earlier postbacks are superseded). ``payments`` are the
    user's counted payments: (order_id, event_id, ts in microseconds, value
    in the reporting currency), sorted.
    """

    click_event_id: str
    user_id: str
    version: int
    campaign_id: str
    acquired_ts: int  # ticks
    payments: tuple[tuple[str, str, int, Decimal], ...]

    @property
    def route(self) -> str:
        return self.click_event_id


class ClockIn(NamedTuple):
    """The data's clock (SPEC 7's settle delay): the greatest event ``ts`` (ticks) the router has routed."""

    ts: int

    @property
    def route(self) -> str:
        return CONFIG_ROUTE


class SendPostback(NamedTuple):
    """A ``send`` decision of the postback stage, for the sender: by its idempotency key."""

    decision: PostbackDecision

    @property
    def route(self) -> str:
        return self.decision.key


StageRecord = (
    TouchIn
    | RedirectAt
    | RedirectIn
    | UnlockIn
    | Answer
    | OrderResult
    | PaymentIn
    | RefundIn
    | SpendIn
    | ConfigIn
    | CallbackIn
    | ConversionsIn
    | ClockIn
    | SendPostback
)


BROADCAST = -1  # Emit.partition: to every partition of the topic


class Emit(NamedTuple):
    """A record for another stage's topic: to ``partition_of(record.route)``, or to every partition."""

    topic: str
    record: StageRecord
    partition: int | None = None  # None: by route; BROADCAST: all
