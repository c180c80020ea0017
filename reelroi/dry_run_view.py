"""``reelroi reattribute --dry-run``: per source, the figures now and under the new policy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reelroi.formatting import money, roi
from reelroi.replay import DryRun

_EMPTY = {"new_users": 0, "revenue": Decimal(0), "spend": Decimal(0)}


def dry_run_rows(result: DryRun, changed_only: bool = False) -> list[dict[str, Any]]:
    """One row per source in either state, before and after side by side, sources that change first."""
    rows = []
    for key in sorted(set(result.before) | set(result.after)):
        was, now = result.before.get(key, _EMPTY), result.after.get(key, _EMPTY)
        changed = was != now
        if changed_only and not changed:
            continue
        rows.append(
            {
                "source_kind": key[0],
                "source_id": key[1],
                "changed": changed,
                "new_users_before": was["new_users"],
                "new_users_after": now["new_users"],
                "revenue_before": money(was["revenue"]),
                "revenue_after": money(now["revenue"]),
                "spend_before": money(was["spend"]),
                "spend_after": money(now["spend"]),
                "roi_before": roi(was["revenue"], was["spend"]),
                "roi_after": roi(now["revenue"], now["spend"]),
            }
        )
    rows.sort(key=lambda r: not r["changed"])
    return rows
