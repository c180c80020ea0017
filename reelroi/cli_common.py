"""What every ``reelroi`` command shares: option helpers, the policy from options, opening the store."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from attribution.errors import ConfigError
from attribution.policy import Policy, parse_duration
from reelroi.settings import ClickHouseSettings, ReelroiSettings, with_password

FORMATS = ("table", "json", "csv")
MAX_LINE_LIMIT = 1 << 30  # a line is held in memory whole: a GiB is already far beyond any event


def env_help(text: str, var: str, default: Any = None) -> str:
    shown = f" (env {var}" + (f"; default {default}" if default is not None else "") + ")"
    return text + shown


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def add_db(p: argparse.ArgumentParser, env: ReelroiSettings) -> None:
    p.add_argument(
        "--db",
        default=env.db,
        help=env_help("ClickHouse DSN: chdb:///dir (embedded) or http://user:pass@host:8123/db", "REELROI_DB", env.db),
    )


def add_policy(p: argparse.ArgumentParser, env: ReelroiSettings, defaults: bool = True) -> None:
    def d(value: str) -> str | None:
        return value if defaults else None

    p.add_argument("--tz", default=d(env.tz), help=env_help("reporting time zone", "REELROI_TZ", env.tz))
    p.add_argument(
        "--currency", default=d(env.currency), help=env_help("reporting currency", "REELROI_CURRENCY", env.currency)
    )
    p.add_argument(
        "--click-window",
        default=d(env.click_window),
        help=env_help("click window, e.g. 7d, 72h", "REELROI_CLICK_WINDOW", env.click_window),
    )
    p.add_argument(
        "--view-window",
        default=d(env.view_window),
        help=env_help("view-through window, e.g. 24h", "REELROI_VIEW_WINDOW", env.view_window),
    )


def add_max_line(p: argparse.ArgumentParser, env: ReelroiSettings) -> None:
    p.add_argument(
        "--max-line-bytes",
        type=int,
        default=env.max_line_bytes,
        help=env_help(
            "longest accepted line; longer ones are rejected too_large", "REELROI_MAX_LINE_BYTES", env.max_line_bytes
        ),
    )


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")


def policy_from(args: argparse.Namespace, base: Policy | None = None) -> Policy:
    base = base or Policy()
    try:
        return Policy(
            currency=args.currency or base.currency,
            tz=args.tz or base.tz,
            click_window_s=parse_duration(args.click_window) if args.click_window else base.click_window_s,
            view_window_s=parse_duration(args.view_window) if args.view_window else base.view_window_s,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def saved_policy(client: Any, db: str) -> Policy:
    """The policy the database was last built with (defaults where none was saved)."""
    from sinks.writer import load_settings

    return Policy.from_settings(load_settings(client, db))


def open_store(dsn: str) -> tuple[Any, str]:
    from sinks.builds import recover
    from sinks.connection import connect, database_of
    from sinks.schema import migrate

    ch = ClickHouseSettings()
    client = connect(with_password(dsn, ch.password))
    db = database_of(dsn, ch.database)
    migrate(client, db)
    # finish or undo what an interrupted replay or reattribute left (sinks/builds.py); the
    # embedded engine opens a directory in one process only, so nothing else can be mid-build
    for done in recover(client, db, exclusive=dsn.startswith("chdb:")):
        if done.action == "switched":
            note = f"finished switching in the {done.command} (build {done.build_id}) that was interrupted"
        else:
            note = f"dropped the unfinished {done.command} (build {done.build_id}); the tables are as before it"
        print(f"reelroi: {note}", file=sys.stderr)
    return client, db
