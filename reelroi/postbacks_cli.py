"""``reelroi postbacks``: the postback ledger (SPEC 7, 回传) on the command line.

Every decision with what the sender did with it (``sinks/postbacks.py``), or
with ``--summary`` per campaign the true activations and pays beside what was
reported to the platform. The rows are the API's (``reelroi/postbacks_view.py``)
and go out as the other reports do (``reelroi/cli_reports.py emit``): a heading
with the policy and ``as_of`` above a table whose control characters are
escapes, CSV cells that a spreadsheet cannot run, JSON with the heading on
stderr. reelroi/cli.py adds the parser and calls ``run_postbacks`` once the
store is open.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attribution.errors import ConfigError
from reelroi.cli_common import FORMATS

# imported when the command runs, like every report's store modules; the choices are spelled here
STATUSES = ("pending", "sending", "sent", "failed", "held_kind", "held_min_amount", "held_ratio", "superseded")
KINDS = ("activate", "pay")
# long identifiers a terminal table leaves out (JSON and CSV carry them)
JSON_ONLY = ("key", "click_event_id", "callback", "decision")


def add_postbacks_parser(sub: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    """``postbacks`` under the CLI's subcommands ``sub``, with its --db option."""
    p = sub.add_parser(
        "postbacks",
        help="the postback ledger (回传): each decision and its delivery, or per campaign reported vs true",
        description="Every postback decision with its status: held_kind, held_min_amount, held_ratio (the part "
        "of the campaign's rule that held it back) and superseded as decided; a send decision as its delivery "
        "(sending, sent, failed), pending before the sender wrote any. --summary: per campaign the true "
        "activations and pays (the ROI report's users and payments) beside decided, sent, held back and failed.",
    )
    add_db(p)
    p.add_argument("--campaign", help="only this campaign_id")
    p.add_argument("--status", choices=STATUSES, help="only decisions with this status (not with --summary)")
    p.add_argument("--kind", choices=KINDS, help="only activate or pay postbacks (not with --summary)")
    p.add_argument(
        "--since",
        help="only conversions at or after this: YYYY-MM-DD (midnight in the reporting time zone) or an ISO time",
    )
    p.add_argument("--limit", type=int, default=1000, help="at most this many decisions, latest first (default 1000)")
    p.add_argument("--summary", action="store_true", help="per campaign: true conversions against the ledger")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout")
    p.add_argument("--bom", action="store_true", help="csv: start with a UTF-8 byte-order mark, for Excel")
    p.set_defaults(columns=None, width=None)  # what emit() reads beside these


def run_postbacks(args: argparse.Namespace, client: Any, db: str) -> int:
    from reelroi.cli_reports import emit
    from reelroi.labels import report_context
    from reelroi.postbacks_view import ledger_shown, since_us, summary_shown
    from sinks.postbacks import MAX_LIMIT, LedgerFilter, ledger_rows, summary_rows

    context = report_context(client, db)
    try:
        since = since_us(args.since, context.policy.tz)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    if args.summary:
        if args.status or args.kind:
            raise ConfigError("--summary counts every status and kind: drop --status and --kind")
        rows = [summary_shown(r) for r in summary_rows(client, db, args.campaign, since)]
        emit(rows, args, context, "Postbacks reported vs true, by campaign")
        return 0
    if not 0 <= args.limit <= MAX_LIMIT:
        raise ConfigError(f"--limit must be 0 to {MAX_LIMIT:,}")
    f = LedgerFilter(campaign_id=args.campaign, status=args.status, kind=args.kind, since_us=since)
    rows = [ledger_shown(r, context.policy.tz) for r in ledger_rows(client, db, f, args.limit)]
    if args.format == "table":
        rows = [{k: v for k, v in r.items() if k not in JSON_ONLY} for r in rows]
    emit(rows, args, context, "Postback ledger, latest decided first")
    return 0
