"""The order stage: which payment of an order counts, which refunds hold (SPEC 3.4-3.5).

An order's payments may name several users (a client bug, a shared order
id); the earliest accepted one counts. The stage tells every user the order
names what the order means for them, so that a user it moved away from is
retracted on that user's own partition. Verdicts (rejections and order
duplicates) are facts keyed by event_id, set and retracted as the order
resolves differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from attribution.orders import PaymentRec, RefundRec, Verdict, resolve_order
from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.records import USER, ConfigIn, Emit, OrderResult, PaymentIn, RefundIn, StageRecord

Result = tuple[PaymentRec | None, Decimal | None, tuple[RefundRec, ...]]
_NOTHING: Result = (None, None, ())


@dataclass(slots=True)
class OrderState:
    seen: dict[str, str] = field(default_factory=dict)
    payments: list[PaymentRec] = field(default_factory=list)
    refunds: list[RefundRec] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # what was emitted for events that do not count
    sent: dict[str, Result] = field(default_factory=dict)  # the result last sent to each user named


class OrderStage(Stage[OrderState]):
    name = "order"

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self._by_currency: dict[str, set[str]] = {}

    def _apply(self, record: StageRecord, at: int) -> None:
        if isinstance(record, (PaymentIn, RefundIn)):
            state = self.keys.get(record.order_id)
            if state is None:
                state = self.keys[record.order_id] = OrderState()
            rec = record.rec
            if not self.first_copy(state.seen, rec.event_id, rec.origin, at):
                return
            if isinstance(record, PaymentIn):
                state.payments.append(record.rec)
                self._by_currency.setdefault(record.rec.currency, set()).add(record.order_id)
            else:
                state.refunds.append(record.rec)
            self.touch(record.order_id, at)
        elif isinstance(record, ConfigIn):
            self.apply_config(record, at)

    def rate_changed(self, currency: str, since: date, at: int) -> None:
        """Re-resolve the orders with a payment in ``currency`` dated on or after ``since``."""
        for order_id in self._by_currency.get(currency, ()):
            if any(p.date >= since for p in self.keys[order_id].payments if p.currency == currency):
                self.touch(order_id, at)

    def _recompute(self, order_id: str, at: int) -> None:
        state = self.keys[order_id]
        resolution = resolve_order(order_id, state.payments, state.refunds, self.config.fx.rate)
        for p in state.payments:
            self.set_verdict(state.verdicts, p.event_id, resolution.verdicts.get(p.event_id), p.origin, "payment", at)
        for r in state.refunds:
            self.set_verdict(state.verdicts, r.event_id, resolution.verdicts.get(r.event_id), r.origin, "refund", at)
        counted = resolution.counted
        owner = counted.user_id if counted is not None else None
        for user in {p.user_id for p in state.payments}:
            result: Result = _NOTHING
            if user == owner and counted is not None:
                result = (_bare(counted), resolution.rate, tuple(_bare_refund(r) for r in resolution.refunds))
            if state.sent.get(user, _NOTHING) != result:
                state.sent[user] = result
                self.emits.append(Emit(USER, OrderResult(user, order_id, at, *result)))

    def _reindex(self) -> None:
        self._by_currency = {}
        for order_id, state in self.keys.items():
            for p in state.payments:
                self._by_currency.setdefault(p.currency, set()).add(order_id)


def _bare(p: PaymentRec) -> PaymentRec:
    return p._replace(origin="")


def _bare_refund(r: RefundRec) -> RefundRec:
    return r._replace(origin="")
