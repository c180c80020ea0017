"""Impressions and clicks per source and local date, read from the event log.

They are stored nowhere else: attribution needs them only as candidates, so the
funnel counts them from ``events`` (every logged event is structurally valid
and the first copy of its ``event_id``, so duplicates never count twice).
An impression's source is its campaign; a click's is its plan when it names
one, else its campaign (SPEC 2 allows exactly one). The date is the local date
of the touch's ``ts`` in the reporting zone, bound as ``{p_tz:String}``.
"""

from __future__ import annotations


def touches_sql(db: str) -> str:
    """``(source_kind, source_id, date, impressions, clicks)`` of every touched source and day."""
    return f"""
        SELECT
            if(JSONExtractString(raw, 'plan_id') != '', 'plan', 'campaign') AS source_kind,
            if(source_kind = 'plan', JSONExtractString(raw, 'plan_id'), JSONExtractString(raw, 'campaign_id'))
                AS source_id,
            toDate32(ts, {{p_tz:String}}) AS date,
            countIf(type = 'impression') AS impressions,
            countIf(type = 'click') AS clicks
        FROM {db}.events FINAL
        WHERE type IN ('impression', 'click')
        GROUP BY source_kind, source_id, date
    """
