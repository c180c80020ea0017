"""Naive, independent reference implementation ("oracle") of /work/shared/SPEC.md.

It is written to be read next to the SPEC, rule by rule, and deliberately shares
no code with the real engine. It is a *batch* computation over the whole set of
events (SPEC 3.8: the reports are a function of the set of events), so it never
has to "correct" anything: it just looks at everything at once.

Standard library only. Every amount is a ``decimal.Decimal`` and all arithmetic
runs in a context with maximal precision that *traps* ``Inexact``: if any sum or
product ever had to be rounded, the oracle raises instead of silently rounding
(SPEC 3.6 "Arithmetic is exact decimal"). The only division (ROI) and the final
display rounding are done on ``fractions.Fraction`` values, which are exact too.

Public API: :func:`reference_reports` (and :func:`read_event_lines` for files);
how one line is read and judged is ``tests/reference/spec_lines.py``.

Interpretations of points the SPEC leaves open are marked "AMBIGUITY:" below.
"""

from __future__ import annotations

import bisect
import gzip
from collections import defaultdict
from datetime import date
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from fractions import Fraction
from zoneinfo import ZoneInfo

from .spec_lines import (
    ONE,
    R_INVALID_FIELD,
    R_NO_FX_RATE,
    R_REFUND_EXCEEDS,
    R_UNKNOWN_ORDER,
    ZERO,
    _is_blank,
    _validate_line,
)

__all__ = ["reference_reports", "read_event_lines"]

# Exact arithmetic: huge precision, and any rounding at all is an error.
_EXACT = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)


# --------------------------------------------------------------------------
# Display (SPEC 3.6 and 6): money 2 places, ROI 4 places, half away from zero,
# never "-0.00".
# --------------------------------------------------------------------------


def _fmt(value, places: int) -> str:
    x = Fraction(value) * (10**places)  # exact
    # floor(|x| + 1/2): round half away from zero
    n = (2 * abs(x.numerator) + x.denominator) // (2 * x.denominator)
    text = f"{n // 10**places}.{n % 10**places:0{places}d}"
    return "-" + text if (x < 0 and n != 0) else text


def money(value) -> str:
    return _fmt(value, 2)


def roi(revenue, spend):
    """roi_dN = revenue_dN / spend; null when spend is 0 (SPEC 5)."""
    if spend == 0:
        return None
    return _fmt(Fraction(revenue) / Fraction(spend), 4)


# --------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------


def _latest_in_window(index, key, lo, hi):
    """Latest event (greatest (ts, event_id)) in index[key] with lo <= ts <= hi.

    index[key] is a pair (events sorted by (ts, event_id), their ts list). The
    last event with ts <= hi is the latest with ts <= hi; it is in the window
    iff its ts >= lo (both ends inclusive, SPEC 3.2)."""
    entry = index.get(key)
    if entry is None:
        return None
    events, ts_list = entry
    i = bisect.bisect_right(ts_list, hi)
    if i == 0:
        return None
    candidate = events[i - 1]
    return candidate if candidate.ts >= lo else None


def _build_index(events, key_fn):
    groups = defaultdict(list)
    for ev in events:
        groups[key_fn(ev)].append(ev)
    index = {}
    for k, evs in groups.items():
        evs.sort(key=lambda e: e.key)
        index[k] = (evs, [e.ts for e in evs])
    return index


def reference_reports(
    lines: list[bytes],
    currency: str = "CNY",
    tz: str = "Asia/Shanghai",
    click_window_s: int = 7 * 86400,
    view_window_s: int = 86400,
) -> dict:
    """Returns {"roi": [...], "commission": [...], "rejects": {"rejected": {reason: count}, "duplicates": n}}"""
    zone = ZoneInfo(tz)
    with localcontext(_EXACT):
        return _compute(lines, currency, zone, Decimal(click_window_s), Decimal(view_window_s))


def _compute(lines, reporting_currency, zone, click_window, view_window):
    rejected = defaultdict(int)
    duplicates = 0

    # ---- SPEC 4: structural validation, line by line -----------------------
    structurally_valid = []
    for line_no, raw in enumerate(lines):
        if isinstance(raw, str):  # convenience; the contract is bytes
            raw = raw.encode("utf-8")
        if _is_blank(raw):
            continue
        result = _validate_line(line_no, raw, zone)
        if isinstance(result, str):
            rejected[result] += 1  # "rejected every time it appears"
        else:
            structurally_valid.append(result)

    # ---- SPEC 3.5: an event_id is processed once ----------------------------
    # Among structurally valid events; the first copy in file order is the one
    # processed (copies are identical; if they differ the SPEC leaves it open).
    # Copies of an event that is later rejected for a later reason are still
    # duplicates, because deduplication happens before those checks.
    events = []
    seen_ids = set()
    for ev in structurally_valid:
        if ev.event_id in seen_ids:
            duplicates += 1
        else:
            seen_ids.add(ev.event_id)
            events.append(ev)

    by_type = defaultdict(list)
    for ev in events:
        by_type[ev.type].append(ev)

    # ---- SPEC 2: configuration is an upsert; final state wins ---------------
    # For the same key the greatest (ts, event_id) wins, whenever it arrived.
    def final_state(config_events, key_fn):
        state = {}
        for ev in config_events:
            k = key_fn(ev)
            if k not in state or ev.key > state[k].key:
                state[k] = ev
        return state

    plans = final_state(by_type["promotion_plan"], lambda e: e.f["plan_id"])
    fx_configs = final_state(by_type["fx_rate"], lambda e: (e.f["currency"], e.f["effective_date"]))
    # (campaign configuration is not needed by any report: SPEC 3.2)

    # ---- SPEC 3.6: currency conversion ---------------------------------------
    fx_dates = defaultdict(list)  # currency -> sorted effective dates (ordinals)
    for cur, eff in fx_configs:
        fx_dates[cur].append(eff)
    for dates in fx_dates.values():
        dates.sort()

    def rate_for(cur, local_date):
        """Rate of `cur` for local date `local_date`, or None (-> no_fx_rate)."""
        if cur == reporting_currency:
            return ONE  # "need no rate (a rate for it is ignored)"
        dates = fx_dates.get(cur, [])
        i = bisect.bisect_right(dates, local_date)  # greatest effective_date <= date
        if i == 0:
            return None
        return fx_configs[(cur, dates[i - 1])].f["rate"]

    # Money events that need a rate: ad_spend (date of period_start), payment,
    # ad_unlock (date of ts). Refunds use their payment's rate (SPEC 3.4).
    rate_of = {}  # event_id -> rate
    accepted_spend, accepted_payments, accepted_unlocks = [], [], []
    for ev in by_type["ad_spend"]:
        r = rate_for(ev.f["currency"], ev.f["period_date"])
        if r is None:
            rejected[R_NO_FX_RATE] += 1
        else:
            rate_of[ev.event_id] = r
            accepted_spend.append(ev)
    for ev in by_type["payment"]:
        r = rate_for(ev.f["currency"], ev.date)
        if r is None:
            rejected[R_NO_FX_RATE] += 1
        else:
            rate_of[ev.event_id] = r
            accepted_payments.append(ev)
    for ev in by_type["ad_unlock"]:
        r = rate_for(ev.f["currency"], ev.date)
        if r is None:
            rejected[R_NO_FX_RATE] += 1
        else:
            rate_of[ev.event_id] = r
            accepted_unlocks.append(ev)

    # ---- SPEC 3.5: payments are unique by order_id ---------------------------
    # The earliest (ts, event_id) *accepted* payment of an order counts; the
    # other accepted payments of that order are duplicates (a no_fx_rate
    # payment was already rejected above: not counted, not a duplicate).
    payments_by_order = defaultdict(list)
    for ev in accepted_payments:
        payments_by_order[ev.f["order_id"]].append(ev)
    counted_payment = {}  # order_id -> payment Event
    for order_id, pays in payments_by_order.items():
        pays.sort(key=lambda e: e.key)
        counted_payment[order_id] = pays[0]
        duplicates += len(pays) - 1

    # ---- SPEC 3.4: refunds ----------------------------------------------------
    refunds_by_order = defaultdict(list)
    for ev in by_type["refund"]:
        payment = counted_payment.get(ev.f["order_id"])
        if payment is None:
            rejected[R_UNKNOWN_ORDER] += 1  # no counted payment of its order
        elif ev.f["currency"] != payment.f["currency"]:
            rejected[R_INVALID_FIELD] += 1  # refund currency mismatch
        else:
            refunds_by_order[ev.f["order_id"]].append(ev)
    accepted_refunds = []  # (refund Event, its counted payment Event)
    for order_id, refunds in refunds_by_order.items():
        payment = counted_payment[order_id]
        refunds.sort(key=lambda e: e.key)  # in (ts, event_id) order
        refunded = ZERO  # only accepted refunds add to the cumulative total
        for ev in refunds:
            if refunded + ev.f["amount"] > payment.f["amount"]:
                rejected[R_REFUND_EXCEEDS] += 1
            else:
                refunded += ev.f["amount"]
                accepted_refunds.append((ev, payment))

    # ---- SPEC 2 (ad_spend): restatements ------------------------------------
    # Per (campaign_id, period_start as an instant) the accepted version with
    # the greatest (ts, event_id) counts; superseded versions are neither
    # rejections nor duplicates.
    latest_spend = final_state(accepted_spend, lambda e: (e.f["campaign_id"], e.f["period_start"]))
    spend_by_row = defaultdict(lambda: ZERO)  # (campaign_id, local date) -> converted spend
    for ev in latest_spend.values():
        spend_by_row[(ev.f["campaign_id"], ev.f["period_date"])] += ev.f["amount"] * rate_of[ev.event_id]

    # ---- Money per user (SPEC 3.3, 3.4) --------------------------------------
    # Items are (kind, local date ordinal, converted positive amount).
    money_of_user = defaultdict(list)
    earliest_money = {}  # user -> earliest (ts, event_id, local date) of counted payment / accepted ad_unlock
    payers = set()

    def note_money(user, ev):
        k = (ev.ts, ev.event_id, ev.date)
        if user not in earliest_money or k < earliest_money[user]:
            earliest_money[user] = k

    for ev in counted_payment.values():
        user = ev.f["user_id"]
        money_of_user[user].append(("iap", ev.date, ev.f["amount"] * rate_of[ev.event_id]))
        payers.add(user)
        note_money(user, ev)
    for ev in accepted_unlocks:
        user = ev.f["user_id"]
        money_of_user[user].append(("iaa", ev.date, ev.f["revenue"] * rate_of[ev.event_id]))
        note_money(user, ev)
    for ev, payment in accepted_refunds:
        # credited to the payment user's source, dated by the refund's own ts,
        # converted at the payment's rate
        user = payment.f["user_id"]
        money_of_user[user].append(("refund", ev.date, ev.f["amount"] * rate_of[payment.event_id]))

    # ---- SPEC 3.1 / 3.2: acquisition and source -----------------------------
    earliest_redirect = {}  # user -> earliest (ts, event_id) redirect
    for ev in by_type["redirect"]:
        u = ev.f["user_id"]
        if u not in earliest_redirect or ev.key < earliest_redirect[u].key:
            earliest_redirect[u] = ev

    clicks_by_click_id = _build_index(by_type["click"], lambda e: e.f["click_id"])
    clicks_by_device = _build_index(by_type["click"], lambda e: e.f["device_id"])
    impressions_by_device = _build_index(by_type["impression"], lambda e: e.f["device_id"])

    def source_of(redirect):
        T = redirect.ts
        click_id = redirect.f["click_id"]
        device_id = redirect.f["device_id"]
        # 2.1 click_id match within [T - click window, T] -> latest such click
        if click_id is not None:
            c = _latest_in_window(clicks_by_click_id, click_id, T - click_window, T)
            if c is not None:
                return c.f["source"]
        if device_id is not None:
            # 2.2 latest click from that device within the click window
            c = _latest_in_window(clicks_by_device, device_id, T - click_window, T)
            if c is not None:
                return c.f["source"]
            # 2.3 latest impression from that device within the view window
            i = _latest_in_window(impressions_by_device, device_id, T - view_window, T)
            if i is not None:
                return ("campaign", i.f["campaign_id"])
        # 2.4 organic
        return ("organic", "organic")

    user_source = {}  # user -> (source_kind, source_id, cohort date ordinal)
    for user, redirect in earliest_redirect.items():
        kind, sid = source_of(redirect)
        user_source[user] = (kind, sid, redirect.date)  # cohort = local date of T
    for user, (_ts, _eid, first_date) in earliest_money.items():
        if user not in user_source:
            # 3.3: money but no redirect -> organic, cohort = local date of the
            # earliest counted payment / accepted ad_unlock
            user_source[user] = ("organic", "organic", first_date)

    # ---- SPEC 5: ROI rows ------------------------------------------------------
    def new_row():
        return {
            "spend": ZERO, "new_users": 0, "payers": 0,
            "revenue_iap": ZERO, "revenue_iaa": ZERO, "refunds": ZERO,
            "revenue_d0": ZERO, "revenue_d1": ZERO, "revenue_d3": ZERO, "revenue_d7": ZERO,
            "revenue_total": ZERO, "commission": ZERO,
        }

    rows = {}  # (source_kind, source_id, cohort ordinal) -> accumulators
    # A row exists for spend (even a counted spend of 0) ...
    for (campaign_id, day), amount in spend_by_row.items():
        rows.setdefault(("campaign", campaign_id, day), new_row())["spend"] += amount

    commission_rows = {}  # (creator_id, plan_id, date ordinal) -> accumulators

    # ... and for new users.
    for user, (kind, sid, cohort) in user_source.items():
        row = rows.setdefault((kind, sid, cohort), new_row())
        row["new_users"] += 1
        if user in payers:
            row["payers"] += 1
        # SPEC 3.7: commission only for plan-sourced users of a configured plan.
        plan = plans.get(sid) if kind == "plan" else None
        for money_kind, day, amount in money_of_user.get(user, ()):
            signed = -amount if money_kind == "refund" else amount
            if money_kind == "iap":
                row["revenue_iap"] += amount
            elif money_kind == "iaa":
                row["revenue_iaa"] += amount
            else:
                row["refunds"] += amount
            row["revenue_total"] += signed
            for n in (0, 1, 3, 7):  # local date <= cohort date + N days
                if day <= cohort + n:
                    row[f"revenue_d{n}"] += signed
            if plan is not None and money_kind in ("iap", "refund"):  # ad_unlock earns none
                rate = plan.f["commission_rate"]
                row["commission"] += rate * signed
                ckey = (plan.f["creator_id"], sid, day)
                crow = commission_rows.setdefault(
                    ckey, {"gross": ZERO, "refunds": ZERO, "commission": ZERO}
                )
                if money_kind == "iap":
                    crow["gross"] += amount
                else:
                    crow["refunds"] += amount
                crow["commission"] += rate * signed

    roi_out = []
    for (kind, sid, cohort) in sorted(rows):
        r = rows[(kind, sid, cohort)]
        roi_out.append(
            {
                "source_kind": kind,
                "source_id": sid,
                "cohort_date": date.fromordinal(cohort).isoformat(),
                "spend": money(r["spend"]),
                "new_users": r["new_users"],
                "payers": r["payers"],
                "revenue_iap": money(r["revenue_iap"]),
                "revenue_iaa": money(r["revenue_iaa"]),
                "refunds": money(r["refunds"]),
                "revenue_d0": money(r["revenue_d0"]),
                "revenue_d1": money(r["revenue_d1"]),
                "revenue_d3": money(r["revenue_d3"]),
                "revenue_d7": money(r["revenue_d7"]),
                "revenue_total": money(r["revenue_total"]),
                "commission": money(r["commission"]),
                "roi_d0": roi(r["revenue_d0"], r["spend"]),
                "roi_d7": roi(r["revenue_d7"], r["spend"]),
                "roi_total": roi(r["revenue_total"], r["spend"]),
            }
        )

    commission_out = []
    for (creator_id, plan_id, day) in sorted(commission_rows):
        c = commission_rows[(creator_id, plan_id, day)]
        commission_out.append(
            {
                "creator_id": creator_id,
                "plan_id": plan_id,
                "date": date.fromordinal(day).isoformat(),
                "gross": money(c["gross"]),
                "refunds": money(c["refunds"]),
                "net": money(c["gross"] - c["refunds"]),
                "commission": money(c["commission"]),
            }
        )

    return {
        "roi": roi_out,
        "commission": commission_out,
        "rejects": {
            "rejected": {reason: n for reason, n in sorted(rejected.items()) if n},
            "duplicates": duplicates,
        },
    }


def read_event_lines(path) -> list[bytes]:
    """Raw lines of a JSON-lines file (``.gz`` allowed), split on LF."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    return data.split(b"\n")
