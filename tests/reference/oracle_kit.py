"""Builders of events and readers of reports for the reference oracle's own tests (``test_spec_oracle*.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from .spec_oracle import reference_reports

DATA = Path(__file__).resolve().parent.parent / "data"

ROI_COLUMNS = [
    "source_kind",
    "source_id",
    "cohort_date",
    "spend",
    "new_users",
    "payers",
    "revenue_iap",
    "revenue_iaa",
    "refunds",
    "revenue_d0",
    "revenue_d1",
    "revenue_d3",
    "revenue_d7",
    "revenue_total",
    "commission",
    "roi_d0",
    "roi_d7",
    "roi_total",
]


def _row(*values):
    """A ROI row written like the SPEC table (null -> None)."""
    row = dict(zip(ROI_COLUMNS, values, strict=True))
    return row


def lines_of(*events):
    """Events as raw JSON lines (dicts are dumped, bytes/str passed through)."""
    out = []
    for e in events:
        if isinstance(e, bytes):
            out.append(e)
        elif isinstance(e, str):
            out.append(e.encode("utf-8"))
        else:
            out.append(json.dumps(e).encode("utf-8"))
    return out


def run(*events, **kw):
    return reference_reports(lines_of(*events), **kw)


# -- small event builders --------------------------------------------------


def click(eid, ts, click_id, device, campaign=None, plan=None):
    e = {"type": "click", "event_id": eid, "ts": ts, "click_id": click_id, "device_id": device}
    if campaign is not None:
        e["campaign_id"] = campaign
    if plan is not None:
        e["plan_id"] = plan
    return e


def impression(eid, ts, device, campaign):
    return {"type": "impression", "event_id": eid, "ts": ts, "campaign_id": campaign, "device_id": device}


def redirect(eid, ts, user, click_id=None, device=None):
    e = {"type": "redirect", "event_id": eid, "ts": ts, "user_id": user, "app_id": "wx1", "host": "wechat"}
    if click_id is not None:
        e["click_id"] = click_id
    if device is not None:
        e["device_id"] = device
    return e


def payment(eid, ts, order, user, amount, currency="CNY"):
    return {
        "type": "payment",
        "event_id": eid,
        "ts": ts,
        "order_id": order,
        "user_id": user,
        "drama_id": "dr1",
        "amount": amount,
        "currency": currency,
        "kind": "unlock",
    }


def refund(eid, ts, order, amount, currency="CNY"):
    return {"type": "refund", "event_id": eid, "ts": ts, "order_id": order, "amount": amount, "currency": currency}


def unlock(eid, ts, user, revenue, currency="CNY"):
    return {
        "type": "ad_unlock",
        "event_id": eid,
        "ts": ts,
        "user_id": user,
        "drama_id": "dr1",
        "revenue": revenue,
        "currency": currency,
    }


def spend(eid, ts, campaign, period_start, amount, currency="CNY"):
    return {
        "type": "ad_spend",
        "event_id": eid,
        "ts": ts,
        "campaign_id": campaign,
        "period_start": period_start,
        "amount": amount,
        "currency": currency,
    }


def fx(eid, ts, currency, rate, effective_date):
    return {
        "type": "fx_rate",
        "event_id": eid,
        "ts": ts,
        "currency": currency,
        "rate": rate,
        "effective_date": effective_date,
    }


def plan_cfg(eid, ts, plan, creator, rate):
    return {
        "type": "promotion_plan",
        "event_id": eid,
        "ts": ts,
        "plan_id": plan,
        "creator_id": creator,
        "drama_id": "dr1",
        "commission_rate": rate,
    }


def roi_rows(report):
    return {(r["source_kind"], r["source_id"], r["cohort_date"]): r for r in report["roi"]}


def source_of_user(report):
    """(kind, id, cohort) of the single row with new users."""
    rows = [r for r in report["roi"] if r["new_users"]]
    assert len(rows) == 1, rows
    return rows[0]["source_kind"], rows[0]["source_id"], rows[0]["cohort_date"]
