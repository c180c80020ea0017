"""The ``reelroi`` command line (SPEC section 6)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import orjson

from attribution.errors import ConfigError, ReelroiError
from reelroi import __version__
from reelroi.cli_common import (
    MAX_LINE_LIMIT,
    add_db,
    add_format,
    add_max_line,
    add_policy,
    env_help,
    open_store,
    parse_date,
    policy_from,
    saved_policy,
)
from reelroi.cli_stream import STREAM_COMMANDS, add_stream_commands
from reelroi.collect.cli import COLLECT_COMMANDS, add_collect_command
from reelroi.settings import ReelroiSettings


def build_parser() -> argparse.ArgumentParser:
    env = ReelroiSettings()
    parser = argparse.ArgumentParser(
        prog="reelroi", description="Event-sourced ad and unlock attribution for micro short dramas."
    )
    parser.add_argument("--version", action="version", version=f"reelroi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="rebuild every derived table from event files")
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files (.gz allowed, - for stdin)")
    add_db(p, env)
    add_policy(p, env)
    p.add_argument("--batch-size", type=int, default=50_000, help="records per engine batch (default 50000)")
    add_max_line(p, env)

    p = sub.add_parser("reattribute", help="rebuild derived tables from the stored event log under a new policy")
    add_db(p, env)
    add_policy(p, env, defaults=False)
    p.add_argument("--dry-run", action="store_true", help="show what would change per source; change nothing")
    p.add_argument("--changed-only", action="store_true", help="with --dry-run: only the sources that change")
    add_format(p)

    from reelroi.cli_reports import add_report_options

    p = sub.add_parser("roi", help="ROI by source and cohort")
    add_db(p, env)
    p.add_argument("--from", dest="date_from", type=parse_date, help="first cohort date (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", type=parse_date, help="last cohort date (YYYY-MM-DD)")
    p.add_argument("--source-kind", choices=("campaign", "plan", "organic"), help="only this kind of source")
    add_report_options(p, roi=True)

    p = sub.add_parser("commission", help="commission by creator, plan and day")
    add_db(p, env)
    p.add_argument("--creator", help="only this creator_id")
    p.add_argument("--from", dest="date_from", type=parse_date, help="first date (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", type=parse_date, help="last date (YYYY-MM-DD)")
    add_report_options(p, roi=False)

    from reelroi.statements_cli import add_statements_parser

    add_statements_parser(sub, lambda q: add_db(q, env), add_format)

    from reelroi.postbacks_cli import add_postbacks_parser

    add_postbacks_parser(sub, lambda q: add_db(q, env))

    p = sub.add_parser("rejects", help="rejection counts by reason, and duplicates")
    add_db(p, env)
    add_format(p)
    p.add_argument("--show", type=int, default=0, metavar="N", help="also list the N latest rejected records")

    p = sub.add_parser("serve", help="the HTTP API and pages for buyers, creators and admins")
    add_db(p, env)
    p.add_argument(
        "--host",
        default=os.environ.get("REELROI_HOST", "127.0.0.1"),
        help=env_help("bind address", "REELROI_HOST", "127.0.0.1"),
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("REELROI_PORT", "8080")),
        help=env_help("port", "REELROI_PORT", 8080),
    )

    p = sub.add_parser("token", help="create, list or revoke API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tp = tsub.add_parser("create", help="create a token (printed once)")
    add_db(tp, env)
    tp.add_argument("--role", required=True, choices=("admin", "buyer", "creator", "producer"))
    tp.add_argument("--subject", default="", help="the buyer_id or creator_id the token is scoped to")
    tp.add_argument("--name", default="", help="a label, e.g. who holds it")
    tp = tsub.add_parser("list", help="list tokens (never their secrets)")
    add_db(tp, env)
    add_format(tp)
    tp = tsub.add_parser("revoke", help="revoke a token by id")
    add_db(tp, env)
    tp.add_argument("token_id")

    add_stream_commands(sub, env)
    add_collect_command(sub, env)

    p = sub.add_parser("schema", help="write the JSON Schema of every event type")
    p.add_argument("--out", help="write to this file instead of stdout")

    p = sub.add_parser("generate", help="write realistic generated events as JSON lines")
    p.add_argument("--out", default="-", help="output file (.gz compresses; default stdout)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--start-date", type=parse_date, default=date(2026, 11, 1))
    p.add_argument("--campaigns", type=int, default=40)
    p.add_argument("--plans", type=int, default=15)
    p.add_argument("--events", type=int, default=None, help="scale users to about this many lines")
    p.add_argument("--users-per-day", type=int, default=20_000, help="acquired users a day (ignored with --events)")
    p.add_argument("--malformed-share", type=float, default=0.002)
    p.add_argument("--duplicate-share", type=float, default=0.01, help="share of exact copies (producer retries)")
    p.add_argument(
        "--shuffle", action="store_true", help="full random arrival order (seeded by --seed; spools to $TMPDIR)"
    )
    return parser


def cmd_replay(args: argparse.Namespace) -> int:
    from reelroi.replay import replay
    from reelroi.sources_io import check_inputs, read_batches
    from sinks.writer import ClickHouseSink

    policy = policy_from(args)
    check_inputs(args.files)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    client, db = open_store(args.db)
    stats = replay(ClickHouseSink(client, db), policy, read_batches(args.files, args.batch_size, args.max_line_bytes))
    _summary("replayed", stats, client, db)
    return 0


def cmd_reattribute(args: argparse.Namespace) -> int:
    from reelroi.replay import reattribute
    from sinks.writer import ClickHouseSink

    client, db = open_store(args.db)
    sink = ClickHouseSink(client, db)
    policy = policy_from(args, saved_policy(client, db))
    if args.dry_run:
        from reelroi.dry_run_view import dry_run_rows
        from reelroi.formatting import render
        from reelroi.replay import dry_run

        result = dry_run(sink, policy)
        print(render(dry_run_rows(result, args.changed_only), args.format))
        shown = " · ".join(f"{k} {v}" for k, v in policy.describe().items())
        print(f"dry run under {shown}: nothing was changed ({result.stats.records:,} logged events)", file=sys.stderr)
        return 0
    stats = reattribute(sink, policy)
    _summary("re-attributed", stats, client, db)
    return 0


def _summary(verb: str, stats: Any, client: Any, db: str) -> None:
    """What a rebuild did, with the rejection and duplicate counts ``reelroi rejects`` shows (the stored truth,
    rejections found during attribution included), not just those seen while reading."""
    from sinks.reports import rejection_counts

    counts = rejection_counts(client, db)
    rejected = sum(counts["rejected"].values())
    rate = stats.records / stats.seconds if stats.seconds else 0
    print(
        f"{verb} {stats.records:,} records: {stats.events:,} events, {rejected:,} rejected, "
        f"{counts['duplicates']:,} duplicates in {stats.seconds:.1f}s ({rate:,.0f} records/s)",
        file=sys.stderr,
    )


def cmd_roi(args: argparse.Namespace) -> int:
    from reelroi.cli_reports import run_roi

    client, db = open_store(args.db)
    return run_roi(args, client, db)


def cmd_commission(args: argparse.Namespace) -> int:
    from reelroi.cli_reports import run_commission

    client, db = open_store(args.db)
    return run_commission(args, client, db)


def cmd_statements(args: argparse.Namespace) -> int:
    from reelroi.statements_cli import run_statements

    client, db = open_store(args.db)
    return run_statements(args, client, db)


def cmd_postbacks(args: argparse.Namespace) -> int:
    from reelroi.postbacks_cli import run_postbacks

    client, db = open_store(args.db)
    return run_postbacks(args, client, db)


def cmd_rejects(args: argparse.Namespace) -> int:
    from reelroi.formatting import render
    from sinks.reports import recent_rejections, rejection_counts

    client, db = open_store(args.db)
    counts = rejection_counts(client, db)
    if args.format == "json":
        print(orjson.dumps(counts).decode())
    else:
        rows: list[dict[str, Any]] = [{"reason": k, "count": v} for k, v in counts["rejected"].items()]
        rows.append({"reason": "(duplicates ignored)", "count": counts["duplicates"]})
        print(render(rows, args.format))
    if args.show > 0:
        from functools import partial
        from types import SimpleNamespace

        from reelroi.formatting import rejected_line, terminal_safe

        # The driver turns a String that is not UTF-8 into a bare hex string, indistinguishable from a
        # line of hex digits: read ``raw`` as bytes, and mark what does not decode.
        as_bytes: Any = SimpleNamespace(query=partial(client.query, column_formats={"raw": "bytes"}))
        for row in recent_rejections(as_bytes, db, args.show):
            shown = [terminal_safe(str(row[k])) for k in ("reason", "origin", "detail")]
            print("\t".join([*shown, rejected_line(row["raw"])]), file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from schemas.jsonschema import event_json_schemas

    text = orjson.dumps(event_json_schemas(), option=orjson.OPT_INDENT_2).decode()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import gzip

    from reelroi.generator import GeneratorConfig, generate

    cfg = GeneratorConfig(
        seed=args.seed,
        start_date=args.start_date,
        days=args.days,
        campaigns=args.campaigns,
        plans=args.plans,
        events=args.events,
        users_per_day=args.users_per_day,
        malformed_share=args.malformed_share,
        duplicate_share=args.duplicate_share,
    )
    lines = generate(cfg)
    if args.shuffle:
        from reelroi.generator.shuffle import shuffled

        lines = shuffled(lines, args.seed)
    if args.out == "-":
        out = sys.stdout.buffer
        for line in lines:
            out.write(line)
        out.flush()
        return 0
    opener: Callable[..., Any] = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wb") as handle:
        handle.writelines(lines)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from reelroi.api.app import Store, create_app
    from streams.metrics import MetricsSettings
    from streams.watcher import start_watcher

    client, db = open_store(args.db)
    store = Store(client, db)
    token = MetricsSettings().token  # REELROI_METRICS_TOKEN: business series at /metrics/business
    app = create_app(store, metrics_token=token)
    start_watcher(client, db, saved_policy(client, db), store.lock)
    business = "; business metrics at /metrics/business" if token else ""
    print(f"reelroi serving http://{args.host}:{args.port}/ (OpenAPI at /openapi.json{business})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from reelroi.formatting import render
    from sinks.tokens import create_token, list_tokens, revoke_token

    client, db = open_store(args.db)
    if args.token_command == "create":
        token, info = create_token(client, db, args.role, args.subject, args.name)
        print(token)
        print(
            f"created {info.role} token {info.token_id}"
            + (f" for {info.subject}" if info.subject else "")
            + "; it is shown only now",
            file=sys.stderr,
        )
        return 0
    if args.token_command == "list":
        rows = [
            {"token_id": t.token_id, "role": t.role, "subject": t.subject, "name": t.name,
             "created_at": t.created_at.isoformat(timespec="seconds"), "revoked": t.revoked}
            for t in list_tokens(client, db)
        ]  # fmt: skip
        print(render(rows, args.format))
        return 0
    if not revoke_token(client, db, args.token_id):
        raise ConfigError(f"no token with id {args.token_id!r}")
    print(f"revoked {args.token_id}", file=sys.stderr)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    **STREAM_COMMANDS,
    **COLLECT_COMMANDS,
    "serve": cmd_serve,
    "token": cmd_token,
    "replay": cmd_replay,
    "reattribute": cmd_reattribute,
    "roi": cmd_roi,
    "commission": cmd_commission,
    "statements": cmd_statements,
    "postbacks": cmd_postbacks,
    "rejects": cmd_rejects,
    "schema": cmd_schema,
    "generate": cmd_generate,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        limit = getattr(args, "max_line_bytes", 1)
        if not 1 <= limit <= MAX_LINE_LIMIT:
            raise ConfigError(f"--max-line-bytes (REELROI_MAX_LINE_BYTES) must be 1 to {MAX_LINE_LIMIT:,}, got {limit}")
        return COMMANDS[args.command](args)
    except ReelroiError as exc:
        print(f"reelroi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"reelroi {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
