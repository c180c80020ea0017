"""Prometheus metrics shared by the worker and the sink (docs/metrics.md lists them, docs/alerts.md their alerts).

Label values come from closed sets (families, event types, reasons, stages,
touches, platforms) or from Kafka topic/partition and, for the business
signals, at most ``REELROI_WATCH_TOP`` campaign ids: never a user, click or
order id.

Two registries, two paths. Pipeline metrics (the default registry) are open at
``/metrics``, like a health check. Business series (the watcher's spend, ROI and
revenue gauges, registered in ``BUSINESS``) say what campaigns spend and earn, so
they are served at ``/metrics/business`` only when ``REELROI_METRICS_TOKEN`` is
set, and only to a request that sends it as a bearer token (Prometheus:
``authorization: {credentials_file: ...}`` in the scrape job).
"""

from __future__ import annotations

import hmac
import logging
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PIPELINE_PATH = "/metrics"
BUSINESS_PATH = "/metrics/business"
BUSINESS = CollectorRegistry(auto_describe=True)  # never served without the token

# Set by the router and the stages (streams/stages.py) and by the sink (streams/sink_stage.py);
# the stages' own figures are in streams/stage_metrics.py.
CONSUMED = Counter("reelroi_events_consumed", "Kafka records taken by the router, by topic family", ["family"])
PROCESSED = Counter(
    "reelroi_events_processed", "Records decoded by the router (events and rejected lines), by event type", ["type"]
)
REJECTED = Counter("reelroi_events_rejected", "Rejections as they are decided, by reason", ["reason"])
DUPLICATES = Counter("reelroi_duplicates", "Ignored copies, by event_id or by order_id", ["kind"])
BATCH_SIZE = Histogram(
    "reelroi_batch_size", "Records per router batch", buckets=(10, 100, 500, 1000, 5000, 10_000, 20_000, 50_000)
)
BATCH_SECONDS = Histogram(
    "reelroi_batch_seconds",
    "Frame, decode, route and deliver time per router batch",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
FRESHNESS = Histogram(
    "reelroi_freshness_seconds",
    "From an input record's Kafka append to its facts written to ClickHouse (sink, per facts message)",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 900),
)
LAST_BATCH = Gauge("reelroi_last_batch_timestamp_seconds", "Unix time of the sink's last write of facts")

SINK_SECONDS = Histogram(
    "reelroi_sink_write_seconds",
    "ClickHouse write latency, by pipeline stage",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SINK_FAILURES = Counter("reelroi_sink_write_failures", "ClickHouse writes that failed, by stage", ["stage"])
SINK_RETRIES = Counter("reelroi_sink_write_retries", "ClickHouse writes tried again after a failure", ["stage"])

log = logging.getLogger("reelroi.metrics")


class MetricsSettings(BaseSettings):
    """``REELROI_METRICS_*``: where a worker serves ``/metrics`` (port 0: nowhere), and the business token.

    ``token`` unset: ``/metrics/business`` does not exist (404), in workers and in ``reelroi serve``.
    """

    model_config = SettingsConfigDict(env_prefix="REELROI_METRICS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 9108
    token: SecretStr | None = None


def bearer_matches(authorization: str | None, token: SecretStr) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value()
    # bytes, not str: compare_digest refuses non-ASCII text, and a header may hold anything
    given_bytes, expected_bytes = given.strip().encode("utf-8", "replace"), expected.encode("utf-8")
    return scheme.lower() == "bearer" and bool(expected) and hmac.compare_digest(given_bytes, expected_bytes)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def metrics_app(token: SecretStr | None) -> WSGIApp:
    """The worker's metrics listener: pipeline open at ``/metrics``, business behind the token."""
    pipeline: WSGIApp = make_wsgi_app(REGISTRY)
    business: WSGIApp = make_wsgi_app(BUSINESS)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PIPELINE_PATH:
            return pipeline(environ, start_response)
        if path == BUSINESS_PATH and token is not None:
            if bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
                return business(environ, start_response)
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", 'Bearer realm="reelroi-metrics"')],
            )
            return [b"business metrics need the bearer token (REELROI_METRICS_TOKEN)\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: metrics are at /metrics\n"]

    return app


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds up the worker's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per scrape is noise
        pass


def serve_metrics(settings: MetricsSettings | None = None) -> int:
    """Serve ``metrics_app`` over HTTP in a background thread; returns the port (0 if off)."""
    settings = settings or MetricsSettings()
    if not settings.port:
        return 0
    try:
        server = make_server(
            settings.host, settings.port, metrics_app(settings.token), server_class=_Server, handler_class=_QuietHandler
        )
    except OSError as exc:  # a taken port must not stop attribution; Prometheus alerts on the missing target
        log.error("metrics not served on %s:%d: %s", settings.host, settings.port, exc)
        return 0
    threading.Thread(target=server.serve_forever, name="reelroi-metrics", daemon=True).start()
    return settings.port
