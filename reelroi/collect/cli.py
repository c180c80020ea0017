"""``reelroi collect``: the HTTP collector, and ``--links`` to print a producer's monitor links."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.errors import ConfigError
from reelroi.cli_common import add_db, env_help, open_store
from reelroi.settings import ReelroiSettings


class CollectSettings(BaseSettings):
    """``REELROI_COLLECT_*``: limits of the collector."""

    model_config = SettingsConfigDict(env_prefix="REELROI_COLLECT_", extra="ignore")

    max_body_bytes: int = Field(8 << 20, ge=1)  # a bigger POST gets 413, and nothing of it is taken
    queue_lines: int = Field(100_000, ge=1)  # monitor lines buffered or in flight, at most; then 503
    linger_ms: float = Field(5.0, ge=0)  # how long a monitor batch waits to fill
    token_refresh_s: float = Field(30.0, gt=0)  # how often tokens are read again from the store
    send_timeout_s: float = Field(15.0, gt=0)  # a POST not acknowledged by then gets 503


def add_collect_command(sub: Any, env: ReelroiSettings) -> None:
    s = CollectSettings()
    p = sub.add_parser("collect", help="the HTTP collector: POST events and ad-platform click-monitor links into Kafka")
    add_db(p, env)
    p.add_argument(
        "--host",
        default=os.environ.get("REELROI_COLLECT_HOST", "127.0.0.1"),
        help=env_help("bind address", "REELROI_COLLECT_HOST", "127.0.0.1"),
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("REELROI_COLLECT_PORT", "8090")),
        help=env_help("port", "REELROI_COLLECT_PORT", 8090),
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get("REELROI_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        help=env_help("Kafka bootstrap servers", "REELROI_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    )
    p.add_argument(
        "--topic-prefix",
        default=os.environ.get("REELROI_KAFKA_TOPIC_PREFIX", "reelroi."),
        help=env_help("topic name prefix", "REELROI_KAFKA_TOPIC_PREFIX", "reelroi."),
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=s.max_body_bytes,
        help=env_help("largest POST body; a bigger one gets 413", "REELROI_COLLECT_MAX_BODY_BYTES", s.max_body_bytes),
    )
    p.add_argument(
        "--queue-lines",
        type=int,
        default=s.queue_lines,
        help=env_help(
            "monitor lines held in memory while Kafka is slow or down; then 503",
            "REELROI_COLLECT_QUEUE_LINES",
            s.queue_lines,
        ),
    )
    p.add_argument(
        "--links",
        metavar="BASE_URL",
        help="print the monitor links of the producer token read from stdin (or REELROI_COLLECT_TOKEN) and exit",
    )


def cmd_collect(args: argparse.Namespace) -> int:
    if args.links:
        return _print_links(args.links)
    import uvicorn

    from reelroi.collect.app import Collector
    from reelroi.collect.auth import Tokens
    from reelroi.collect.publish import ClickQueue, Publisher
    from sinks.tokens import active_token_hashes
    from streams.produce import Batching, create_topics

    settings = CollectSettings()
    if args.max_body_bytes < 1 or args.queue_lines < 1:
        raise ConfigError("--max-body-bytes and --queue-lines must be at least 1")
    client, db = open_store(args.db)
    tokens = Tokens(lambda: active_token_hashes(client, db))
    stop = threading.Event()
    tokens.refresh_every(settings.token_refresh_s, stop)
    create_topics(args.bootstrap, args.topic_prefix)
    publisher = Publisher(args.bootstrap, args.topic_prefix, Batching(), settings.send_timeout_s)
    clicks = ClickQueue(publisher, args.queue_lines, settings.linger_ms / 1000)
    app = Collector(tokens, publisher, clicks, args.max_body_bytes)
    print(
        f"reelroi collecting on http://{args.host}:{args.port}/collect/v1/ into {args.bootstrap} "
        f"({tokens.producers()} producer tokens; refreshed every {settings.token_refresh_s:g}s)",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop=_fastest("uvloop", "asyncio"),
        http=_fastest("httptools", "h11"),
        lifespan="on",
        backlog=4096,
        log_level="warning",
        access_log=False,
    )
    stop.set()
    return 0


def _fastest(wanted: str, fallback: str) -> str:
    """uvicorn's C-backed loop or parser when installed (about twice the requests/s), else the pure-Python one."""
    try:
        __import__(wanted)
    except ImportError:
        return fallback
    return wanted


def _print_links(base: str) -> int:
    from reelroi.collect.links import LINK_PARAM, link_key_of_token
    from reelroi.collect.platforms import PLATFORMS

    token = os.environ.get("REELROI_COLLECT_TOKEN") or sys.stdin.readline()
    try:
        for name, platform in PLATFORMS.items():
            key = link_key_of_token(token, name)
            print(f"{name}\t{base.rstrip('/')}/collect/v1/click/{name}?{LINK_PARAM}={key}&{platform.link_query()}")
    except ValueError as exc:
        raise ConfigError(f"collect --links: {exc}") from None
    return 0


COLLECT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"collect": cmd_collect}
