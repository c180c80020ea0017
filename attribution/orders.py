"""Rules 4 and 5 of SPEC section 3 for one order: which payment counts, which refunds hold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import NamedTuple

NO_FX_RATE = "no_fx_rate"
UNKNOWN_ORDER = "unknown_order"
INVALID_FIELD = "invalid_field"
REFUND_EXCEEDS_PAYMENT = "refund_exceeds_payment"
DUPLICATE = "duplicate"


class PaymentRec(NamedTuple):
    ts: int  # ticks (attribution.clock): exact to 10^-18 s
    event_id: str
    user_id: str
    amount: Decimal
    currency: str
    date: date
    origin: str
    raw: bytes


class RefundRec(NamedTuple):
    ts: int  # ticks (attribution.clock): exact to 10^-18 s
    event_id: str
    amount: Decimal
    currency: str
    date: date
    origin: str
    raw: bytes


class Verdict(NamedTuple):
    """Why an event of the order does not count: a rejection reason or ``duplicate``."""

    reason: str
    detail: str


class OrderResolution(NamedTuple):
    counted: PaymentRec | None
    rate: Decimal | None
    refunds: list[RefundRec]
    verdicts: dict[str, Verdict]


def resolve_order(
    order_id: str,
    payments: list[PaymentRec],
    refunds: list[RefundRec],
    rate_of: Callable[[str, date], Decimal | None],
) -> OrderResolution:
    """Resolve an order from all of its payments and refunds, in any arrival order."""
    verdicts: dict[str, Verdict] = {}
    counted: PaymentRec | None = None
    rate: Decimal | None = None
    for payment in sorted(payments):
        payment_rate = rate_of(payment.currency, payment.date)
        if payment_rate is None:
            verdicts[payment.event_id] = Verdict(
                NO_FX_RATE, f"no {payment.currency} rate effective on or before {payment.date}"
            )
        elif counted is None:
            counted, rate = payment, payment_rate
        else:
            verdicts[payment.event_id] = Verdict(DUPLICATE, f"order {order_id} already paid by {counted.event_id}")
    accepted: list[RefundRec] = []
    refunded = Decimal(0)
    for refund in sorted(refunds):
        if counted is None:
            verdicts[refund.event_id] = Verdict(UNKNOWN_ORDER, f"no counted payment for order {order_id}")
        elif refund.currency != counted.currency:
            verdicts[refund.event_id] = Verdict(
                INVALID_FIELD, f"refund currency {refund.currency} differs from payment currency {counted.currency}"
            )
        elif refunded + refund.amount > counted.amount:
            verdicts[refund.event_id] = Verdict(
                REFUND_EXCEEDS_PAYMENT,
                f"refunds would total {refunded + refund.amount} of a {counted.amount} payment",
            )
        else:
            refunded += refund.amount
            accepted.append(refund)
    return OrderResolution(counted, rate, accepted, verdicts)
