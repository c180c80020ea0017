"""The router: frames and decodes input lines, and re-keys each event for the stage that owns it.

Stateless, so it runs on every worker and keeps nothing across batches. Each
valid line becomes an event-log fact (its original bytes, keyed by event_id)
and one or more compact stage records; each invalid line a structural
rejection (keyed by origin, bytes kept). Routing uses only the event itself,
never the topic or key it came with (SPEC 2), so an outside producer's keying
cannot split a key's state.

Most lines take a fast path (``attribution/stages/fast_path.py``): the
high-volume event types parsed by msgspec into typed structs and checked with the very
field parsers the pydantic models use. Whatever it does not plainly accept
goes through ``schemas.decode``, which stays the authority on every
rejection and its reason (tests/unit/test_fast_path.py proves both agree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from attribution.clock import TICKS_PER_US, LocalDates, to_micros, to_ticks
from attribution.orders import PaymentRec, RefundRec
from attribution.outputs import LoggedEvent, Rejection
from attribution.policy import Policy
from attribution.stages.facts import Fact
from attribution.stages.fast_path import fast_decode
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
    StageRecord,
    TouchIn,
    UnlockIn,
)
from schemas import events as ev
from schemas.decode import Invalid, decode
from schemas.framing import Record

# The records of every routed event are built by tuple.__new__: a NamedTuple's own constructor is a
# Python function, a third of a record's cost (each class's fields are in its definition's order).
_new = tuple.__new__


class Send(Protocol):
    def __call__(self, topic: str, record: StageRecord, partition: int | None = None, /) -> None: ...


class Out(Protocol):
    """Where ``Router.route`` puts what it routes: replay files stage records and event-log rows as they come."""

    def send(self, topic: str, record: StageRecord, partition: int | None = None, /) -> None:
        """A stage record for ``topic``: by its route, or to every partition (``BROADCAST``)."""

    def event(self, event_id: str, type_: str, ts_us: int, origin: str, raw: bytes, /) -> None:
        """An event for the event log."""


class _Collected:
    """The default ``Out``: emits and event-log facts in lists (the stream workers send them on)."""

    __slots__ = ("emits", "facts")

    def __init__(self, facts: list[Fact], emits: list[Emit]) -> None:
        self.facts, self.emits = facts, emits

    def send(self, topic: str, record: StageRecord, partition: int | None = None, /) -> None:
        self.emits.append(_new(Emit, (topic, record, partition)))

    def event(self, event_id: str, type_: str, ts_us: int, origin: str, raw: bytes, /) -> None:
        self.facts.append(Fact("event", 0, LoggedEvent(event_id, type_, ts_us, origin, raw)))


class Router:
    """``route(records)`` → (facts, emits) for one batch of input records; ``route(records, out)`` hands the
    events and stage records to ``out`` as they are routed (replay's pass 0 files them straight away)."""

    def __init__(self, policy: Policy, postbacks: bool = False, fast: bool = True) -> None:
        self._fast = fast  # off only to compare with the pydantic path (tests/unit/test_fast_path.py)
        self._dates = LocalDates(policy.zone)
        self.records = 0
        self.rejected = 0
        self.fast = 0  # records the fast path decided
        self.postbacks = postbacks  # also feed the postback stage: clicks' callbacks and the data's clock
        self.clock = 0  # the greatest event ts routed so far (ticks)
        self._fast_routes: dict[str, Callable[..., None]] = {
            "impression": self._impression,
            "click": self._click,
            "redirect": self._redirect,
            "payment": self._payment,
            "ad_unlock": self._unlock,
            "refund": self._refund,
        }

    def route(self, records: Iterable[Record], out: Out | None = None) -> tuple[list[Fact], list[Emit]]:
        """(facts, emits) of a batch; with ``out``, events and stage records go to it instead, and facts are rejections."""
        facts: list[Fact] = []
        emits: list[Emit] = []
        if out is None:
            out = _Collected(facts, emits)
        send, log = out.send, out.event
        fast_routes = self._fast_routes
        for origin, raw, verdict in records:
            self.records += 1
            if verdict is None and self._fast:
                found = fast_decode(raw)
                if found is not None:
                    kind, eid, ts, fields = found
                    self.fast += 1
                    log(eid, kind, ts // TICKS_PER_US, origin, raw)
                    fast_routes[kind](eid, ts, origin, send, *fields)
                    if self.postbacks and ts > self.clock:
                        self.clock = ts
                    continue
            event = verdict or decode(raw)
            if isinstance(event, Invalid):
                self.rejected += 1
                rejection = Rejection(origin, event.reason, event.detail, event.event_id, event.type, origin, raw)
                facts.append(Fact("rejection", 0, rejection))
                continue
            ts = to_ticks(event.ts)
            log(event.event_id, event.type, ts // TICKS_PER_US, origin, raw)
            self._route(event, ts, origin, send)
            if self.postbacks and ts > self.clock:
                self.clock = ts
        if self.postbacks and self.clock:
            send(POSTBACK, ClockIn(self.clock), BROADCAST)
        return facts, emits

    # One builder per event type, called with the event's fields by the fast path and by ``_route``.

    def _impression(self, eid: str, ts: int, origin: str, send: Send, campaign_id: str, device_id: str) -> None:
        send(TOUCH, _new(TouchIn, ("d:" + device_id, ts, eid, True, "campaign", campaign_id, origin, True)))

    def _click(
        self, eid: str, ts: int, origin: str, send: Send, click_id: str, device_id: str,
        campaign_id: str | None, plan_id: str | None, callback: str | None,
    ) -> None:  # fmt: skip
        kind, source = ("campaign", campaign_id) if campaign_id is not None else ("plan", plan_id)
        assert source is not None
        send(TOUCH, _new(TouchIn, ("d:" + device_id, ts, eid, False, kind, source, origin, True)))
        send(TOUCH, _new(TouchIn, ("k:" + click_id, ts, eid, False, kind, source, origin, False)))
        if self.postbacks and callback is not None and campaign_id is not None:
            send(POSTBACK, CallbackIn(eid, ts, campaign_id, callback, origin))

    def _redirect(
        self, eid: str, ts: int, origin: str, send: Send, user_id: str, click_id: str | None,
        device_id: str | None,
    ) -> None:  # fmt: skip
        send(USER, _new(RedirectIn, (user_id, ts, eid, click_id, device_id, origin)))
        if click_id is not None:
            send(TOUCH, _new(RedirectAt, ("k:" + click_id, ts, eid, user_id)))
        if device_id is not None:
            send(TOUCH, _new(RedirectAt, ("d:" + device_id, ts, eid, user_id)))

    def _payment(
        self, eid: str, ts: int, origin: str, send: Send, order_id: str, user_id: str, amount: Decimal,
        currency: str,
    ) -> None:  # fmt: skip
        rec = _new(PaymentRec, (ts, eid, user_id, amount, currency, self._dates.of_ticks(ts), origin, b""))
        send(ORDER, _new(PaymentIn, (order_id, rec)))

    def _unlock(
        self, eid: str, ts: int, origin: str, send: Send, user_id: str, revenue: Decimal, currency: str
    ) -> None:
        send(USER, _new(UnlockIn, (user_id, ts, eid, revenue, currency, self._dates.of_ticks(ts), origin)))

    def _refund(
        self, eid: str, ts: int, origin: str, send: Send, order_id: str, amount: Decimal, currency: str
    ) -> None:
        rec = _new(RefundRec, (ts, eid, amount, currency, self._dates.of_ticks(ts), origin, b""))
        send(ORDER, _new(RefundIn, (order_id, rec)))

    def _route(self, event: ev.Event, ts: int, origin: str, send: Send) -> None:
        eid = event.event_id
        if isinstance(event, ev.Impression):  # by frequency
            self._impression(eid, ts, origin, send, event.campaign_id, event.device_id)
        elif isinstance(event, ev.AdUnlock):
            self._unlock(eid, ts, origin, send, event.user_id, event.revenue, event.currency)
        elif isinstance(event, ev.Redirect):
            self._redirect(eid, ts, origin, send, event.user_id, event.click_id, event.device_id)
        elif isinstance(event, ev.Click):
            click = (event.click_id, event.device_id, event.campaign_id, event.plan_id, event.callback)
            self._click(eid, ts, origin, send, *click)
        elif isinstance(event, ev.Payment):
            self._payment(eid, ts, origin, send, event.order_id, event.user_id, event.amount, event.currency)
        elif isinstance(event, ev.Refund):
            self._refund(eid, ts, origin, send, event.order_id, event.amount, event.currency)
        elif isinstance(event, ev.AdSpend):
            period_us = to_micros(event.period_start)
            spend = SpendIn(
                event.campaign_id, ts, eid, period_us, self._dates.of_micros(period_us), event.amount,
                event.currency, origin,
            )  # fmt: skip
            send(SPEND, spend)
        else:
            send(CONFIG, _config(event, ts, origin))


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
