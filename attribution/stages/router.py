"""The router: frames and decodes input lines, and re-keys each event for the stage that owns it.

Stateless, so it runs on every worker and keeps nothing across batches. Each
valid line becomes an event-log fact (its original bytes, keyed by event_id)
and one or more compact stage records; each invalid line a structural
rejection (keyed by origin, bytes kept). Routing uses only the event itself,
never the topic or key it came with (SPEC 2), so an outside producer's keying
cannot split a key's state.
"""

from __future__ import annotations

from collections.abc import Iterable

from attribution.clock import TICKS_PER_US, LocalDates, to_micros, to_ticks
from attribution.orders import PaymentRec, RefundRec
from attribution.outputs import LoggedEvent, Rejection
from attribution.policy import Policy
from attribution.stages.facts import Fact
from attribution.stages.records import (
    BROADCAST,
    CAMPAIGN,
    CONFIG,
    FX,
    ORDER,
    PLAN,
    POSTBACK,
    RULE,
    SPEND,
    TOUCH,
    USER,
    CallbackIn,
    ClockIn,
    ConfigIn,
    Emit,
    PaymentIn,
    RedirectAt,
    RedirectIn,
    RefundIn,
    SpendIn,
    TouchIn,
    UnlockIn,
)
from schemas import events as ev
from schemas.decode import Invalid, decode
from schemas.framing import Record


class Router:
    """``route(records)`` → (facts, emits) for one batch of input records."""

    def __init__(self, policy: Policy, postbacks: bool = False) -> None:
        self._dates = LocalDates(policy.zone)
        self.records = 0
        self.rejected = 0
        self.postbacks = postbacks  # also feed the postback stage: clicks' callbacks and the data's clock
        self.clock = 0  # the greatest event ts routed so far (ticks)

    def route(self, records: Iterable[Record]) -> tuple[list[Fact], list[Emit]]:
        facts: list[Fact] = []
        emits: list[Emit] = []
        for origin, raw, verdict in records:
            self.records += 1
            event = verdict or decode(raw)
            if isinstance(event, Invalid):
                self.rejected += 1
                rejection = Rejection(origin, event.reason, event.detail, event.event_id, event.type, origin, raw)
                facts.append(Fact("rejection", 0, rejection))
                continue
            ts = to_ticks(event.ts)
            facts.append(Fact("event", 0, LoggedEvent(event.event_id, event.type, ts // TICKS_PER_US, origin, raw)))
            self._route(event, ts, origin, emits)
            if self.postbacks:
                if ts > self.clock:
                    self.clock = ts
                if isinstance(event, ev.Click) and event.callback is not None and event.campaign_id is not None:
                    callback = CallbackIn(event.event_id, ts, event.campaign_id, event.callback, origin)
                    emits.append(Emit(POSTBACK, callback))
        if self.postbacks and self.clock:
            emits.append(Emit(POSTBACK, ClockIn(self.clock), BROADCAST))
        return facts, emits

    def _route(self, event: ev.Event, ts: int, origin: str, emits: list[Emit]) -> None:
        eid = event.event_id
        if isinstance(event, ev.Impression):  # by frequency
            emits.append(
                Emit(TOUCH, TouchIn("d:" + event.device_id, ts, eid, True, "campaign", event.campaign_id, origin, True))
            )
        elif isinstance(event, ev.AdUnlock):
            day = self._dates.of_ticks(ts)
            emits.append(Emit(USER, UnlockIn(event.user_id, ts, eid, event.revenue, event.currency, day, origin)))
        elif isinstance(event, ev.Redirect):
            emits.append(Emit(USER, RedirectIn(event.user_id, ts, eid, event.click_id, event.device_id, origin)))
            if event.click_id is not None:
                emits.append(Emit(TOUCH, RedirectAt("k:" + event.click_id, ts, eid, event.user_id)))
            if event.device_id is not None:
                emits.append(Emit(TOUCH, RedirectAt("d:" + event.device_id, ts, eid, event.user_id)))
        elif isinstance(event, ev.Click):
            kind, source = ("campaign", event.campaign_id) if event.campaign_id is not None else ("plan", event.plan_id)
            assert source is not None
            emits.append(Emit(TOUCH, TouchIn("d:" + event.device_id, ts, eid, False, kind, source, origin, True)))
            emits.append(Emit(TOUCH, TouchIn("k:" + event.click_id, ts, eid, False, kind, source, origin, False)))
        elif isinstance(event, ev.Payment):
            day = self._dates.of_ticks(ts)
            rec = PaymentRec(ts, eid, event.user_id, event.amount, event.currency, day, origin, b"")
            emits.append(Emit(ORDER, PaymentIn(event.order_id, rec)))
        elif isinstance(event, ev.Refund):
            day = self._dates.of_ticks(ts)
            emits.append(
                Emit(
                    ORDER, RefundIn(event.order_id, RefundRec(ts, eid, event.amount, event.currency, day, origin, b""))
                )
            )
        elif isinstance(event, ev.AdSpend):
            period_us = to_micros(event.period_start)
            spend = SpendIn(
                event.campaign_id, ts, eid, period_us, self._dates.of_micros(period_us), event.amount,
                event.currency, origin,
            )  # fmt: skip
            emits.append(Emit(SPEND, spend))
        else:
            emits.append(Emit(CONFIG, _config(event, ts, origin)))


def _config(event: ev.Event, ts: int, origin: str) -> ConfigIn:
    eid = event.event_id
    if isinstance(event, ev.FxRate):
        key = f"{event.currency}:{event.effective_date.isoformat()}"
        return ConfigIn(FX, key, ts, eid, (event.currency, event.effective_date, event.rate), origin)
    if isinstance(event, ev.PromotionPlan):
        return ConfigIn(PLAN, event.plan_id, ts, eid, (event.creator_id, event.drama_id, event.commission_rate), origin)
    if isinstance(event, ev.Campaign):
        values = (event.platform, event.drama_id, event.buyer_id, event.name)
        return ConfigIn(CAMPAIGN, event.campaign_id, ts, eid, values, origin)
    if isinstance(event, ev.PostbackRule):
        rule = (tuple(event.kinds), event.min_amount, event.send_ratio)
        return ConfigIn(RULE, event.campaign_id, ts, eid, rule, origin)
    raise TypeError(f"no stage for event type {event.type!r}")  # decode only yields the types above
