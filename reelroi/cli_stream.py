"""The streaming commands: ``broker``, ``topics``, ``worker``, ``sink``, ``postback``, ``demo``, ``produce``, ``lag``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from attribution.errors import ConfigError
from attribution.policy import Policy
from reelroi.cli_common import add_db, add_max_line, add_policy, env_help, open_store, policy_from
from reelroi.settings import ReelroiSettings


def add_stream_commands(sub: Any, env: ReelroiSettings) -> None:
    """The streaming subcommands' parsers."""
    p = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu, in memory) in the foreground")
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("REELROI_BROKER_PORT", "9092")),
        help=env_help("port on 127.0.0.1", "REELROI_BROKER_PORT", 9092),
    )

    def _add_kafka(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--bootstrap",
            default=os.environ.get("REELROI_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            help=env_help("Kafka bootstrap servers", "REELROI_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        )
        q.add_argument(
            "--topic-prefix",
            default=os.environ.get("REELROI_KAFKA_TOPIC_PREFIX", "reelroi."),
            help=env_help("topic name prefix", "REELROI_KAFKA_TOPIC_PREFIX", "reelroi."),
        )

    p = sub.add_parser(
        "worker",
        help="run one attribution worker (router and stages, Kafka -> facts topic); run as many as you like",
        description="One member of the attribution consumer group: the router and every keyed stage "
        "(docs/design/streaming.md). It never opens ClickHouse: run `reelroi sink` to write the facts. "
        "Stage partitions are checkpointed to --state-dir every REELROI_STAGE_CHECKPOINT_S (default 5) seconds; "
        "workers on several machines need a directory they all share.",
    )
    add_policy(p, env)
    _add_kafka(p)
    add_max_line(p, env)
    p.add_argument(
        "--state-dir",
        default=os.environ.get("REELROI_STAGE_STATE_DIR", "reelroi-state"),
        help=env_help("where stage checkpoints live", "REELROI_STAGE_STATE_DIR", "reelroi-state"),
    )

    p = sub.add_parser(
        "sink",
        help="write the facts the stages publish (topic <prefix>facts) to ClickHouse, in its own consumer group; "
        "with the embedded chdb run exactly one (it owns the directory), with a server any number",
        description="Reads <prefix>facts in consumer group <REELROI_KAFKA_GROUP>-sink and writes every fact with "
        "its own version, acking only what was written; a failed write is retried for ever. With the embedded "
        "chdb (the default --db) exactly one sink runs, and it alone opens the directory: stop it to read reports "
        "from that directory. With a ClickHouse server any number may run. Batches: REELROI_SINK_BATCH_MESSAGES "
        "(default 64 messages), REELROI_SINK_BATCH_WITHIN_S (default 1). It saves the policy options as the "
        "database's settings (the reports' windows), and runs the business watcher (REELROI_WATCH_*) on the "
        "database it owns.",
    )
    add_db(p, env)
    add_policy(p, env)
    _add_kafka(p)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("REELROI_SINK_METRICS_PORT", "9109")),
        help=env_help("port of /metrics on REELROI_METRICS_HOST (0: off)", "REELROI_SINK_METRICS_PORT", 9109),
    )

    p = sub.add_parser(
        "postback",
        help="send the postback stage's decisions (topic <prefix>postbacks) to Ocean Engine, Tencent and Kuaishou, "
        "retrying until each is sent or failed, and record every attempt in the ledger (the facts topic)",
        description="Reads <prefix>postbacks in consumer group <REELROI_KAFKA_GROUP>-postback and sends each `send` "
        "decision as its platform documents (docs/postbacks.md), with the decision's key as idempotency key; "
        "retried with backoff (REELROI_POSTBACK_RETRY_FIRST_S 1, REELROI_POSTBACK_RETRY_MOST_S 600) until the "
        "platform accepts or answers a permanent error, and failed after REELROI_POSTBACK_GIVE_UP_S (86400). "
        "Requests per second per platform: REELROI_POSTBACK_RATE (50) or REELROI_POSTBACK_RATE_<PLATFORM>; base URLs: "
        "REELROI_POSTBACK_URL_<PLATFORM>; Tencent's token: REELROI_POSTBACK_TENCENT_ACCESS_TOKEN. A record is acked "
        "once every decision in it is final and its delivery fact is in Kafka; run `reelroi sink` to write them.",
    )
    _add_kafka(p)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("REELROI_POSTBACK_METRICS_PORT", "9110")),
        help=env_help("port of /metrics on REELROI_METRICS_HOST (0: off)", "REELROI_POSTBACK_METRICS_PORT", 9110),
    )

    p = sub.add_parser(
        "demo", help="broker + worker processes + sink into embedded ClickHouse, with live traffic and a live ROI table"
    )
    add_db(p, env)
    p.add_argument(
        "--workers",
        type=_at_least(1),
        default=os.environ.get("REELROI_DEMO_WORKERS", "2"),
        help=env_help("reelroi worker processes to run", "REELROI_DEMO_WORKERS", 2),
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("REELROI_DEMO_MINUTES", "3")),
        help=env_help("how long to stream", "REELROI_DEMO_MINUTES", 3),
    )
    p.add_argument(
        "--rate",
        type=int,
        default=int(os.environ.get("REELROI_DEMO_RATE", "3000")),
        help=env_help("events/s of generated live traffic (about)", "REELROI_DEMO_RATE", 3000),
    )
    p.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("REELROI_DEMO_SEED", "42")),
        help=env_help("seed of the generated traffic: the same seed, the same traffic", "REELROI_DEMO_SEED", 42),
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
        help=env_help("record-batch compression codec", "REELROI_KAFKA_COMPRESSION", "none"),
    )
    p.add_argument(
        "--batch-lines",
        type=_at_least(1),
        default=os.environ.get("REELROI_KAFKA_BATCH_LINES", "1000"),
        help=env_help("lines per Kafka message, at most (1: one event per message)", "REELROI_KAFKA_BATCH_LINES", 1000),
    )
    p.add_argument(
        "--batch-bytes",
        type=_at_least(1),
        default=os.environ.get("REELROI_KAFKA_BATCH_BYTES", "524288"),
        help=env_help(
            "bytes per Kafka message, at most (a longer line goes alone)", "REELROI_KAFKA_BATCH_BYTES", 524288
        ),
    )
    p.add_argument(
        "--linger-ms",
        type=float,
        default=os.environ.get("REELROI_KAFKA_BATCH_LINGER_MS", "50"),
        help=env_help("how long a message waits for more lines", "REELROI_KAFKA_BATCH_LINGER_MS", 50),
    )

    p = sub.add_parser(
        "lag",
        help="consumer lag of the router, every stage and the sink; exit 0 once everything produced is attributed "
        "and written (1: not yet)",
        description="Per partition: end offset, committed offset and lag, of the workers' group (input family "
        "topics and stage topics) and of the sink's group <group>-sink (the facts topic). Drained: two scans, "
        "half a second apart, with the same end offsets and every committed offset at its end.",
    )
    _add_kafka(p)
    p.add_argument(
        "--group",
        default=os.environ.get("REELROI_KAFKA_GROUP", "reelroi-attribution"),
        help=env_help("the workers' group (the sink's: <group>-sink)", "REELROI_KAFKA_GROUP", "reelroi-attribution"),
    )
    p.add_argument("--db", metavar="DSN", help="deprecated, ignored: lag reads only Kafka (kept for old scripts)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="poll until drained, at most this long")


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def cmd_broker(args: argparse.Namespace) -> int:
    from streams.broker import run_foreground

    return run_foreground(args.port)


def cmd_worker(args: argparse.Namespace) -> int:
    import faust

    from streams.kafka_settings import KafkaSettings
    from streams.metrics import serve_metrics
    from streams.produce import create_topics
    from streams.stage_worker import build_worker
    from streams.stages import StageSettings

    policy = policy_from(args)
    settings = KafkaSettings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix)
    create_topics(settings.bootstrap, settings.topic_prefix, settings.partitions)
    worker = build_worker(settings, policy, StageSettings(state_dir=args.state_dir), max_line=args.max_line_bytes)
    serve_metrics()
    runner = faust.Worker(worker.app, loglevel=os.environ.get("REELROI_LOG_LEVEL", "WARN"), quiet=True)
    runner.spinner = None  # faust draws its spinner on a terminal whatever quiet says; it spills into logs
    runner.execute_from_commandline()
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    import threading

    import faust

    from reelroi.replay import policy_settings
    from sinks.writer import ClickHouseSink
    from streams.kafka_settings import KafkaSettings
    from streams.produce import create_topics
    from streams.sink_stage import SinkSettings, build_sink_app, serve_sink_metrics
    from streams.watcher import start_watcher

    policy = policy_from(args)
    kafka = KafkaSettings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix)
    client, db = open_store(args.db)
    sink = ClickHouseSink(client, db)
    sink.save_settings(policy_settings(policy))  # the reports read the windows the facts were made with
    create_topics(kafka.bootstrap, kafka.topic_prefix, kafka.partitions)
    lock = threading.Lock()  # the client is not thread-safe: the watcher and the writes take turns
    app = build_sink_app(kafka, sink, SinkSettings(), lock)
    serve_sink_metrics(args.metrics_port)
    watcher = start_watcher(client, db, policy, lock)
    runner = faust.Worker(app, loglevel=os.environ.get("REELROI_LOG_LEVEL", "WARN"), quiet=True)
    runner.spinner = None  # faust draws its spinner on a terminal whatever quiet says; it spills into logs
    try:
        runner.execute_from_commandline()
    finally:
        # Before the interpreter finalizes: a daemon thread cut off inside a chdb call
        # holds the engine's lock, and chdb's own shutdown then waits for it for ever.
        if watcher is not None:
            watcher.stop()
            watcher.join(timeout=60)
    return 0


def cmd_postback(args: argparse.Namespace) -> int:
    import faust

    from streams.kafka_settings import KafkaSettings
    from streams.postback_sender import (
        PostbackSettings,
        build_postback_app,
        ensure_topic,
        postbacks_topic,
        serve_postback_metrics,
    )
    from streams.produce import create_topics

    kafka = KafkaSettings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix)
    create_topics(kafka.bootstrap, kafka.topic_prefix, kafka.partitions)  # the facts topic it writes the ledger to
    ensure_topic(kafka.bootstrap, postbacks_topic(kafka.topic_prefix), kafka.partitions)
    app = build_postback_app(kafka, PostbackSettings())
    serve_postback_metrics(args.metrics_port)
    runner = faust.Worker(app, loglevel=os.environ.get("REELROI_LOG_LEVEL", "WARN"), quiet=True)
    runner.spinner = None  # faust draws its spinner on a terminal whatever quiet says; it spills into logs
    runner.execute_from_commandline()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from reelroi.demo import run_demo
    from reelroi.replay import clear
    from sinks.writer import ClickHouseSink

    policy = Policy()
    client, db = open_store(args.db)
    sink = ClickHouseSink(client, db)
    clear(sink, policy)
    return run_demo(sink, policy, args.minutes, args.rate, args.seed, args.workers)


def cmd_topics(args: argparse.Namespace) -> int:
    from streams.produce import create_topics

    created = create_topics(args.bootstrap, args.topic_prefix, args.partitions)
    print(
        f"created {len(created)} topics" + (f": {', '.join(created)}" if created else " (all existed)"), file=sys.stderr
    )
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from reelroi.progress import Progress
    from reelroi.sources_io import check_inputs, read_records
    from streams.produce import BATCH_BYTES_LIMIT, Batching, Tally, create_topics, produce, sendable

    if not 1 <= args.batch_bytes <= BATCH_BYTES_LIMIT:
        raise ConfigError(
            f"--batch-bytes (REELROI_KAFKA_BATCH_BYTES) must be 1 to {BATCH_BYTES_LIMIT:,}, below the 1 MiB"
            f" message limit; got {args.batch_bytes:,}"
        )
    if not args.linger_ms >= 0:
        raise ConfigError(f"--linger-ms (REELROI_KAFKA_BATCH_LINGER_MS) must be 0 or more, got {args.linger_ms}")
    try:
        batching = Batching(lines=args.batch_lines, max_bytes=args.batch_bytes, linger_ms=args.linger_ms)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"produce: {error['loc'][0]}: {error['msg']}") from None
    check_inputs(args.files)
    create_topics(args.bootstrap, args.topic_prefix)
    progress = Progress("produce")
    tally = Tally()
    records = (record for batch in read_records(args.files) for record in batch)
    lines = sendable(records, tally)
    produce(args.bootstrap, args.topic_prefix, lines, progress.advance, args.compression, tally, batching)
    progress.close()
    print(f"produced to {args.bootstrap} ({progress.rate():,.0f} lines/s): {tally.summary()}", file=sys.stderr)
    return 1 if tally.failed else 0


def cmd_lag(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from streams.lag import LagReader, wait_drained

    try:
        reader = LagReader(args.bootstrap, args.topic_prefix, args.group)
    except KafkaError as exc:
        raise ConfigError(f"cannot reach Kafka at {args.bootstrap}: {exc}") from None
    try:
        report, drained = wait_drained(reader.scan, max(0.0, args.wait))
    finally:
        reader.close()
    print(report.render(drained))
    if not drained and args.wait > 0:
        print(f"reelroi lag: not drained after {args.wait:g}s", file=sys.stderr)
    return 0 if drained else 1


STREAM_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "broker": cmd_broker,
    "topics": cmd_topics,
    "worker": cmd_worker,
    "sink": cmd_sink,
    "postback": cmd_postback,
    "demo": cmd_demo,
    "produce": cmd_produce,
    "lag": cmd_lag,
}
