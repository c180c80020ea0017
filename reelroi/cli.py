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
from attribution.policy import Policy, parse_duration
from reelroi import __version__
from reelroi.settings import ClickHouseSettings, ReelroiSettings, with_password

FORMATS = ("table", "json", "csv")


def _env_help(text: str, var: str, default: Any = None) -> str:
    shown = f" (env {var}" + (f"; default {default}" if default is not None else "") + ")"
    return text + shown


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def _add_db(p: argparse.ArgumentParser, env: ReelroiSettings) -> None:
    p.add_argument(
        "--db",
        default=env.db,
        help=_env_help("ClickHouse DSN: chdb:///dir (embedded) or http://user:pass@host:8123/db", "REELROI_DB", env.db),
    )


def _add_policy(p: argparse.ArgumentParser, env: ReelroiSettings, defaults: bool = True) -> None:
    def d(value: str) -> str | None:
        return value if defaults else None

    p.add_argument("--tz", default=d(env.tz), help=_env_help("reporting time zone", "REELROI_TZ", env.tz))
    p.add_argument(
        "--currency", default=d(env.currency), help=_env_help("reporting currency", "REELROI_CURRENCY", env.currency)
    )
    p.add_argument(
        "--click-window",
        default=d(env.click_window),
        help=_env_help("click window, e.g. 7d, 72h", "REELROI_CLICK_WINDOW", env.click_window),
    )
    p.add_argument(
        "--view-window",
        default=d(env.view_window),
        help=_env_help("view-through window, e.g. 24h", "REELROI_VIEW_WINDOW", env.view_window),
    )


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")


def build_parser() -> argparse.ArgumentParser:
    env = ReelroiSettings()
    parser = argparse.ArgumentParser(
        prog="reelroi", description="Event-sourced ad and unlock attribution for micro short dramas."
    )
    parser.add_argument("--version", action="version", version=f"reelroi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="rebuild every derived table from event files")
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files (.gz allowed, - for stdin)")
    _add_db(p, env)
    _add_policy(p, env)
    p.add_argument("--batch-size", type=int, default=50_000, help="records per engine batch (default 50000)")

    p = sub.add_parser("reattribute", help="rebuild derived tables from the stored event log under a new policy")
    _add_db(p, env)
    _add_policy(p, env, defaults=False)

    from reelroi.cli_reports import add_report_options

    p = sub.add_parser("roi", help="ROI by source and cohort")
    _add_db(p, env)
    p.add_argument("--from", dest="date_from", type=_date, help="first cohort date (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", type=_date, help="last cohort date (YYYY-MM-DD)")
    p.add_argument("--source-kind", choices=("campaign", "plan", "organic"), help="only this kind of source")
    add_report_options(p, roi=True)

    p = sub.add_parser("commission", help="commission by creator, plan and day")
    _add_db(p, env)
    p.add_argument("--creator", help="only this creator_id")
    p.add_argument("--from", dest="date_from", type=_date, help="first date (YYYY-MM-DD)")
    p.add_argument("--to", dest="date_to", type=_date, help="last date (YYYY-MM-DD)")
    add_report_options(p, roi=False)

    from reelroi.statements_cli import add_statements_parser

    add_statements_parser(sub, lambda q: _add_db(q, env), _add_format)

    p = sub.add_parser("rejects", help="rejection counts by reason, and duplicates")
    _add_db(p, env)
    _add_format(p)
    p.add_argument("--show", type=int, default=0, metavar="N", help="also list the N latest rejected records")

    p = sub.add_parser("serve", help="the HTTP API and pages for buyers, creators and admins")
    _add_db(p, env)
    p.add_argument(
        "--host",
        default=os.environ.get("REELROI_HOST", "127.0.0.1"),
        help=_env_help("bind address", "REELROI_HOST", "127.0.0.1"),
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("REELROI_PORT", "8080")),
        help=_env_help("port", "REELROI_PORT", 8080),
    )

    p = sub.add_parser("token", help="create, list or revoke API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    tp = tsub.add_parser("create", help="create a token (printed once)")
    _add_db(tp, env)
    tp.add_argument("--role", required=True, choices=("admin", "buyer", "creator"))
    tp.add_argument("--subject", default="", help="the buyer_id or creator_id the token is scoped to")
    tp.add_argument("--name", default="", help="a label, e.g. who holds it")
    tp = tsub.add_parser("list", help="list tokens (never their secrets)")
    _add_db(tp, env)
    _add_format(tp)
    tp = tsub.add_parser("revoke", help="revoke a token by id")
    _add_db(tp, env)
    tp.add_argument("token_id")

    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu, in memory) in the foreground")
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("REELROI_BROKER_PORT", "9092")),
        help=_env_help("port on 127.0.0.1", "REELROI_BROKER_PORT", 9092),
    )

    def _add_kafka(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--bootstrap",
            default=os.environ.get("REELROI_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            help=_env_help("Kafka bootstrap servers", "REELROI_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        )
        q.add_argument(
            "--topic-prefix",
            default=os.environ.get("REELROI_KAFKA_TOPIC_PREFIX", "reelroi."),
            help=_env_help("topic name prefix", "REELROI_KAFKA_TOPIC_PREFIX", "reelroi."),
        )

    p = sub.add_parser("worker", help="run the faust-streaming attribution worker (Kafka -> ClickHouse)")
    _add_db(p, env)
    _add_policy(p, env)
    _add_kafka(p)

    p = sub.add_parser("demo", help="broker + worker + embedded ClickHouse with live traffic and a live ROI table")
    _add_db(p, env)
    p.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("REELROI_DEMO_MINUTES", "3")),
        help=_env_help("how long to stream", "REELROI_DEMO_MINUTES", 3),
    )
    p.add_argument(
        "--rate",
        type=int,
        default=int(os.environ.get("REELROI_DEMO_RATE", "3000")),
        help=_env_help("events/s of generated live traffic (about)", "REELROI_DEMO_RATE", 3000),
    )
    p.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("REELROI_DEMO_SEED", "42")),
        help=_env_help("seed of the generated traffic: the same seed, the same traffic", "REELROI_DEMO_SEED", 42),
    )

    p = sub.add_parser("topics", help="create the topics (idempotent)")
    p.add_argument("action", choices=("create",))
    _add_kafka(p)
    p.add_argument("--partitions", type=int, default=6)

    p = sub.add_parser("produce", help="publish JSON-lines events to Kafka, keyed for partitioning")
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files (.gz allowed, - for stdin)")
    _add_kafka(p)
    p.add_argument(
        "--compression",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
        default=os.environ.get("REELROI_KAFKA_COMPRESSION", "none"),
        help=_env_help("record-batch compression codec", "REELROI_KAFKA_COMPRESSION", "none"),
    )

    p = sub.add_parser("schema", help="write the JSON Schema of every event type")
    p.add_argument("--out", help="write to this file instead of stdout")

    p = sub.add_parser("generate", help="write realistic generated events as JSON lines")
    p.add_argument("--out", default="-", help="output file (.gz compresses; default stdout)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--start-date", type=_date, default=date(2026, 11, 1))
    p.add_argument("--campaigns", type=int, default=40)
    p.add_argument("--plans", type=int, default=15)
    p.add_argument("--events", type=int, default=None, help="scale users to about this many lines")
    p.add_argument("--users-per-day", type=int, default=20_000, help="acquired users a day (ignored with --events)")
    p.add_argument("--malformed-share", type=float, default=0.002)
    p.add_argument("--duplicate-share", type=float, default=0.01)
    return parser


def _policy(args: argparse.Namespace, base: Policy | None = None) -> Policy:
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


def _saved_policy(client: Any, db: str) -> Policy:
    """The policy the database was last built with (defaults where none was saved)."""
    from sinks.writer import load_settings

    saved = load_settings(client, db)
    return Policy(
        currency=saved.get("policy.currency", "CNY"),
        tz=saved.get("policy.tz", "Asia/Shanghai"),
        click_window_s=parse_duration(saved.get("policy.click_window", "7d")),
        view_window_s=parse_duration(saved.get("policy.view_window", "24h")),
    )


def _open_store(dsn: str) -> tuple[Any, str]:
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


def cmd_replay(args: argparse.Namespace) -> int:
    from reelroi.replay import replay
    from reelroi.sources_io import check_inputs, read_records
    from sinks.writer import ClickHouseSink

    policy = _policy(args)
    check_inputs(args.files)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    client, db = _open_store(args.db)
    stats = replay(ClickHouseSink(client, db), policy, read_records(args.files, args.batch_size))
    _summary("replayed", stats)
    return 0


def cmd_reattribute(args: argparse.Namespace) -> int:
    from reelroi.replay import reattribute
    from sinks.writer import ClickHouseSink

    client, db = _open_store(args.db)
    sink = ClickHouseSink(client, db)
    stats = reattribute(sink, _policy(args, _saved_policy(client, db)))
    _summary("re-attributed", stats)
    return 0


def _summary(verb: str, stats: Any) -> None:
    rate = stats.records / stats.seconds if stats.seconds else 0
    print(
        f"{verb} {stats.records:,} records: {stats.events:,} events, {stats.rejected:,} rejected, "
        f"{stats.duplicates:,} duplicates in {stats.seconds:.1f}s ({rate:,.0f} records/s)",
        file=sys.stderr,
    )


def cmd_roi(args: argparse.Namespace) -> int:
    from reelroi.cli_reports import run_roi

    client, db = _open_store(args.db)
    return run_roi(args, client, db)


def cmd_commission(args: argparse.Namespace) -> int:
    from reelroi.cli_reports import run_commission

    client, db = _open_store(args.db)
    return run_commission(args, client, db)


def cmd_statements(args: argparse.Namespace) -> int:
    from reelroi.statements_cli import run_statements

    client, db = _open_store(args.db)
    return run_statements(args, client, db)


def cmd_rejects(args: argparse.Namespace) -> int:
    from reelroi.formatting import render
    from sinks.reports import recent_rejections, rejection_counts

    client, db = _open_store(args.db)
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
    if args.out == "-":
        out = sys.stdout.buffer
        for line in generate(cfg):
            out.write(line)
        out.flush()
        return 0
    opener: Callable[..., Any] = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wb") as handle:
        handle.writelines(generate(cfg))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from reelroi.api.app import Store, create_app
    from streams.metrics import MetricsSettings
    from streams.watcher import start_watcher

    client, db = _open_store(args.db)
    store = Store(client, db)
    token = MetricsSettings().token  # REELROI_METRICS_TOKEN: business series at /metrics/business
    app = create_app(store, metrics_token=token)
    start_watcher(client, db, _saved_policy(client, db), store.lock)
    business = "; business metrics at /metrics/business" if token else ""
    print(f"reelroi serving http://{args.host}:{args.port}/ (OpenAPI at /openapi.json{business})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from reelroi.formatting import render
    from sinks.tokens import create_token, list_tokens, revoke_token

    client, db = _open_store(args.db)
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


def cmd_broker(args: argparse.Namespace) -> int:
    from streams.broker import run_foreground

    return run_foreground(args.port)


def cmd_worker(args: argparse.Namespace) -> int:
    import faust

    from reelroi.replay import policy_settings
    from sinks.writer import ClickHouseSink
    from streams.metrics import serve_metrics
    from streams.produce import create_topics
    from streams.watcher import start_watcher
    from streams.worker import KafkaSettings, build_app

    policy = _policy(args)
    settings = KafkaSettings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix)
    client, db = _open_store(args.db)
    sink = ClickHouseSink(client, db)
    sink.save_settings(policy_settings(policy))
    create_topics(settings.bootstrap, settings.topic_prefix, settings.partitions)
    worker = build_app(settings, sink, policy)
    serve_metrics()
    start_watcher(client, db, policy, worker.attributor.lock)
    loglevel = os.environ.get("REELROI_LOG_LEVEL", "WARN")
    faust.Worker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from reelroi.demo import run_demo
    from reelroi.replay import clear
    from sinks.writer import ClickHouseSink

    policy = Policy()
    client, db = _open_store(args.db)
    sink = ClickHouseSink(client, db)
    clear(sink, policy)
    return run_demo(sink, policy, args.minutes, args.rate, args.seed)


def cmd_topics(args: argparse.Namespace) -> int:
    from streams.produce import create_topics

    created = create_topics(args.bootstrap, args.topic_prefix, args.partitions)
    print(
        f"created {len(created)} topics" + (f": {', '.join(created)}" if created else " (all existed)"), file=sys.stderr
    )
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from reelroi.progress import Progress
    from reelroi.sources_io import check_inputs, read_records
    from streams.produce import Tally, create_topics, produce, sendable

    check_inputs(args.files)
    create_topics(args.bootstrap, args.topic_prefix)
    progress = Progress("produce")
    tally = Tally()
    records = (record for batch in read_records(args.files) for record in batch)
    produce(args.bootstrap, args.topic_prefix, sendable(records, tally), progress.advance, args.compression, tally)
    progress.close()
    print(f"produced to {args.bootstrap} ({progress.rate():,.0f} lines/s): {tally.summary()}", file=sys.stderr)
    return 1 if tally.failed else 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "broker": cmd_broker,
    "topics": cmd_topics,
    "worker": cmd_worker,
    "demo": cmd_demo,
    "produce": cmd_produce,
    "serve": cmd_serve,
    "token": cmd_token,
    "replay": cmd_replay,
    "reattribute": cmd_reattribute,
    "roi": cmd_roi,
    "commission": cmd_commission,
    "statements": cmd_statements,
    "rejects": cmd_rejects,
    "schema": cmd_schema,
    "generate": cmd_generate,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
