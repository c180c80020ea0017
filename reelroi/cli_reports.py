"""``reelroi roi`` and ``reelroi commission`` beyond SPEC 6's rows: pivots, funnel, cohort matrix, exports.

Without ``--group-by``, ``--matrix`` or ``--funnel`` the ROI report is exactly
SPEC 6's rows (plus ``unfinished``), which scripts compare. The other shapes are
the API's (``reelroi/report_rows.py`` builds both), so the command line and the
pages never disagree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attribution.errors import ConfigError

if TYPE_CHECKING:
    from reelroi.labels import ReportContext

# the heavy imports (ClickHouse, openpyxl) wait for a report to run: every command builds this parser

REPORT_FORMATS = ("table", "json", "csv", "xlsx")
# columns that say which row it is: repeated in every block of a wrapped table
KEY_COLUMNS = (
    "source_kind", "source_id", "cohort_date", "campaign_id", "name", "platform", "drama_id", "buyer_id", "creator_id",
    "plan_id", "date",
)  # fmt: skip


def add_report_options(p: argparse.ArgumentParser, roi: bool) -> None:
    """The shape and output options of ``roi`` (``roi=True``) and ``commission``."""
    p.add_argument("--format", choices=REPORT_FORMATS, default="table", help="output format (default table)")
    p.add_argument("--out", type=Path, help="write to this file instead of stdout (needed for --format xlsx)")
    p.add_argument("--bom", action="store_true", help="csv: start with a UTF-8 byte-order mark, for Excel")
    p.add_argument("--columns", help="only these columns, in this order (comma-separated names)")
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help="table: wrap columns into blocks this many cells wide (env COLUMNS; default the terminal's, 0: never)",
    )
    if not roi:
        return
    p.add_argument(
        "--group-by",
        help="sum rows by one dimension (source, campaign, drama, platform, buyer, date) or two joined by a "
        "comma (date,campaign; drama,platform)",
    )
    p.add_argument("--funnel", action="store_true", help="add impressions, clicks, CTR, unit costs, ARPU, ARPPU")
    p.add_argument("--matrix", action="store_true", help="the cohort matrix: revenue and ROI at each of --days")
    p.add_argument(
        "--days",
        default="0,1,2,3,7,14,30",
        help="--matrix day offsets (default 0,1,2,3,7,14,30)",
    )
    p.add_argument(
        "--matrix-by",
        choices=("source", "campaign", "drama", "platform"),
        default="source",
        help="--matrix rows per (default source)",
    )


def run_roi(args: argparse.Namespace, client: Any, db: str) -> int:
    from reelroi.formatting import roi_report
    from reelroi.labels import report_context, with_maturity
    from reelroi.report_rows import matrix_flat, matrix_shown, parse_days, roi_shown
    from sinks.analytics import BadGrouping, RoiFilter, roi_grouped
    from sinks.matrix import cohort_matrix
    from sinks.reports import roi_rows

    context = report_context(client, db)
    f = RoiFilter(args.date_from, args.date_to, args.source_kind)
    if args.matrix:
        try:
            days = parse_days(args.days)
        except ValueError as exc:
            raise ConfigError(f"--days: {exc}") from None
        try:
            exact = cohort_matrix(client, db, f, days, args.matrix_by)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        rows = matrix_flat(matrix_shown(exact, days, context))
        title = f"Cohort matrix by {args.matrix_by}"
    elif args.group_by or args.funnel:
        group = args.group_by or "source_date"
        try:
            exact = roi_grouped(client, db, f, group, args.funnel, context.policy.tz)
        except BadGrouping as exc:
            raise ConfigError(f"--group-by: {exc}") from None
        rows = [roi_shown(r, context, funnel=args.funnel) for r in exact]
        title = f"ROI by {group}"
    else:
        rows = with_maturity(roi_report(roi_rows(client, db, args.date_from, args.date_to, args.source_kind)), context)
        title = "ROI by source and cohort"
    emit(rows, args, context, title)
    return 0


def run_commission(args: argparse.Namespace, client: Any, db: str) -> int:
    from reelroi.formatting import commission_report
    from reelroi.labels import report_context
    from sinks.reports import commission_rows

    context = report_context(client, db)
    rows = commission_report(commission_rows(client, db, args.creator, args.date_from, args.date_to))
    emit(rows, args, context, "Commission by creator, plan and day")
    return 0


def _columns(rows: list[dict[str, Any]], wanted: str | None) -> list[dict[str, Any]]:
    if not wanted or not rows:
        return rows
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in rows[0]]
    if unknown:
        raise ConfigError(f"--columns: no column {', '.join(unknown)}; the columns are {', '.join(rows[0])}")
    keep = [*names, *(["unfinished"] if "unfinished" in rows[0] and "unfinished" not in names else [])]
    return [{n: row[n] for n in keep} for row in rows]


def _width(args: argparse.Namespace) -> int:
    if args.width is not None:
        return int(args.width)
    # an explicit COLUMNS wins; on a terminal its size; piped, the table is not wrapped
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return shutil.get_terminal_size().columns
    return 0


def emit(rows: list[dict[str, Any]], args: argparse.Namespace, context: ReportContext, title: str) -> None:
    """A report with its policy and ``as_of``: a heading on a table, columns in CSV and xlsx, stderr beside JSON."""
    from reelroi.exports import csv_bytes, xlsx_bytes
    from reelroi.formatting import render, wrapped_table
    from reelroi.labels import for_table, table_footer

    rows = _columns(rows, args.columns)
    fmt = args.format
    if fmt == "xlsx" and args.out is None:
        raise ConfigError("--format xlsx writes a file: give --out FILE.xlsx")
    if fmt == "xlsx":
        data = xlsx_bytes(rows, context, title)
    elif fmt == "csv":
        data = csv_bytes(rows, context, args.bom)
    elif fmt == "json":
        data = (render(rows, "json") + "\n").encode()
        print(context.heading(title), file=sys.stderr)
    else:
        lines = [context.heading(title), wrapped_table(for_table(rows), _width(args), KEY_COLUMNS)]
        footer = table_footer(rows)
        if footer:
            lines.append(footer)
        data = ("\n".join(lines) + "\n").encode()
    if args.out is not None:
        args.out.write_bytes(data)
        print(f"wrote {args.out} ({len(data):,} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))  # text formats only: xlsx needs --out
    warning = context.warning()
    if warning:
        print(warning, file=sys.stderr)
