"""``reelroi statements close|list|show``: creator statements (SPEC section 5) on the command line.

reelroi/cli.py adds the parser (``add_statements_parser``) with the other
commands and calls ``run_statements`` once the store is open. The store
modules are imported only when a statement command runs, like the CLI's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson

from attribution.errors import ConfigError
from attribution.settlement import parse_period
from reelroi.formatting import render
from reelroi.statements_view import line_row, order_row, statement_row

CYCLES = ("monthly", "semimonthly", "weekly")
AddOptions = Callable[[argparse.ArgumentParser], None]


def add_statements_parser(sub: Any, add_db: AddOptions, add_format: AddOptions) -> None:
    """``statements close|list|show`` under the CLI's subcommands ``sub``, with its --db and --format options."""
    p = sub.add_parser("statements", help="creator statements (分账): close a period, list, show")
    actions = p.add_subparsers(dest="statements_command", required=True, metavar="ACTION")
    q = actions.add_parser("close", help="write the immutable statements of a period (later events: adjustments)")
    add_db(q)
    q.add_argument("--period", required=True, help="2026-11 (monthly), 2026-11-H1|H2 (semimonthly), 2026-W45 (weekly)")
    q.add_argument("--cycle", choices=CYCLES, help="the cycle --period must be in")
    q.add_argument("--creator", help="only this creator_id (default: every creator with commission to settle)")
    q.add_argument("--force", action="store_true", help="close a period that has not ended on the data's clock")
    q = actions.add_parser("list", help="closed statements with their totals")
    add_db(q)
    q.add_argument("--creator", help="only this creator_id")
    add_format(q)
    q = actions.add_parser("show", help="one statement's lines, or with --orders the orders explaining them")
    add_db(q)
    q.add_argument("statement_id")
    q.add_argument("--orders", action="store_true", help="per-order detail of every line, with linked refunds")
    add_format(q)


def close(args: argparse.Namespace, client: Any, db: str) -> int:
    """Close the period; each statement written on stdout, creators skipped and why on stderr.

    Closing every creator skips those that cannot close the period (already
    closed, say) and closes the rest; when there is nobody left to close and
    someone was skipped, it is an error, like closing one creator twice.
    """
    try:
        period = parse_period(args.period, args.cycle)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from sinks import statements as st

    done = st.close(client, db, period, args.creator, args.force)
    for creator, reason in done.skipped:
        print(f"skipped creator {creator}: {reason}", file=sys.stderr)
    if not done.written and done.skipped:
        raise ConfigError(f"{period.name} is already closed for every creator with commission to settle")
    for w in done.written:
        lines = f"{w['lines']} line" + ("" if w["lines"] == 1 else "s")
        print(f"closed {period.name} for {w['creator_id']}: statement {w['statement_id']} ({lines})")
    if not done.written:
        print(f"nothing to settle up to the end of {period.name}; no statement written", file=sys.stderr)
    return 0


def show(args: argparse.Namespace, client: Any, db: str) -> int:
    """A statement's lines, or with ``--orders`` its per-order detail; JSON carries the header too."""
    from sinks import statements as st

    header = statement_row(st.get_statement(client, db, args.statement_id))
    if args.orders:
        nested = args.format == "json"
        rows = [order_row(r, header["tz"], nested) for r in st.statement_orders(client, db, args.statement_id)]
    else:
        rows = [line_row(r) for r in st.statement_lines(client, db, args.statement_id)]
    if args.format == "json":
        print(orjson.dumps({"statement": header, "orders" if args.orders else "lines": rows}).decode())
        return 0
    print(
        f"statement {header['statement_id']}: creator {header['creator_id']}, {header['period']} "
        f"({header['period_start']}..{header['period_end']}), commission {header['commission']} {header['currency']}, "
        f"as of {header['as_of']}, closed {header['closed_at']}" + (" (forced)" if header["forced"] else ""),
        file=sys.stderr,
    )
    print(render(rows, args.format))
    return 0


def run_statements(args: argparse.Namespace, client: Any, db: str) -> int:
    """Run ``statements close|list|show`` on an open store."""
    if args.statements_command == "close":
        return close(args, client, db)
    if args.statements_command == "list":
        from sinks.statements import list_statements

        print(render([statement_row(r) for r in list_statements(client, db, args.creator)], args.format))
        return 0
    return show(args, client, db)
