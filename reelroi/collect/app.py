"""The collector's HTTP application: a plain ASGI callable (SPEC 7, "Collecting events over HTTP").

Not FastAPI: two routes with no request models gain nothing from it, and a
monitor GET must answer fast (load_tests/bench_collect.py measures both).

    POST /collect/v1/events            Bearer producer token; JSON lines or one JSON array;
                                       202 {"taken": n} once Kafka acknowledged every line
    GET  /collect/v1/click/<platform>  ?link_key=<id>.<mac>&…macros…; 200 {"ret": 0} once queued
    GET  /healthz, /metrics            open, like ``reelroi serve``'s
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest

from reelroi.collect.auth import PRODUCER, Tokens
from reelroi.collect.body import body_lines
from reelroi.collect.links import LINK_PARAM, strip_link_key
from reelroi.collect.platforms import PLATFORMS, map_click, query_values
from reelroi.collect.publish import ClickQueue, Publisher, PublishError
from streams.produce import BATCH_BYTES_LIMIT

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("reelroi.collect")
EVENTS_PATH = "/collect/v1/events"
CLICK_PREFIX = "/collect/v1/click/"
_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_OK = orjson.dumps({"ret": 0, "msg": "ok"})  # Tencent's monitor wants ret 0 in the body; the others, a 200

LINES = Counter("reelroi_collect_lines", "Lines the collector took into Kafka", ["route"])
CLICKS = Counter("reelroi_collect_clicks", "Monitor GETs by outcome", ["platform", "outcome"])
REFUSED = Counter("reelroi_collect_refused", "Requests answered 4xx/5xx", ["route", "status"])
QUEUE = Gauge("reelroi_collect_click_queue_lines", "Monitor lines buffered or in flight")
SENT = Gauge("reelroi_collect_click_lines_sent", "Monitor lines Kafka acknowledged since start")


class Collector:
    """The ASGI app; ``lifespan`` starts the producer and the click flusher and drains them at shutdown."""

    def __init__(self, tokens: Tokens, publisher: Publisher, clicks: ClickQueue, max_body: int) -> None:
        self.tokens = tokens
        self.publisher = publisher
        self.clicks = clicks
        self.max_body = max_body
        QUEUE.set_function(clicks.depth)
        SENT.set_function(lambda: clicks.sent)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(CLICK_PREFIX):
            if method not in ("GET", "HEAD"):
                await _answer(send, 405, {"error": "GET only"}, [(b"allow", b"GET, HEAD")])
                return
            await self._click(scope, path[len(CLICK_PREFIX) :], send)
        elif path == EVENTS_PATH:
            if method != "POST":
                await _answer(send, 405, {"error": "POST only"}, [(b"allow", b"POST")])
                return
            await self._events(scope, receive, send)
        elif path == "/healthz":
            await _answer(send, 200, {"status": "ok"})
        elif path == "/metrics":
            await _raw(send, 200, generate_latest(REGISTRY), [(b"content-type", CONTENT_TYPE_LATEST.encode())])
        else:
            await _answer(send, 404, {"error": "not found"})

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        holder = self.tokens.bearer(headers.get(b"authorization"))
        if holder is None:
            REFUSED.labels("events", "401").inc()
            await _answer(
                send, 401, {"error": "a producer token is needed"}, [(b"www-authenticate", b'Bearer realm="reelroi"')]
            )
            return
        if holder.role != PRODUCER:
            REFUSED.labels("events", "403").inc()
            await _answer(send, 403, {"error": f"a {holder.role} token cannot send events; use a producer token"})
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(send, f"the body is over {self.max_body:,} bytes")
            return
        body = await _read_body(receive, self.max_body)
        if body is None:  # nothing of it is sent: the whole body is read before any line moves
            await self._too_large(send, f"the body is over {self.max_body:,} bytes")
            return
        lines = body_lines(body)
        if any(len(line) > BATCH_BYTES_LIMIT for line in lines):
            await self._too_large(
                send, f"a line is over {BATCH_BYTES_LIMIT:,} bytes, more than one Kafka message holds"
            )
            return
        try:
            taken = await self.publisher.publish(lines)
        except PublishError as exc:
            REFUSED.labels("events", "503").inc()
            log.warning("POST of %d lines not taken: %s", len(lines), exc)
            await _answer(
                send, 503, {"error": f"Kafka did not take the lines, send them again: {exc}"}, [(b"retry-after", b"1")]
            )
            return
        LINES.labels("events").inc(taken)
        await _answer(send, 202, {"taken": taken})

    async def _too_large(self, send: Send, why: str) -> None:
        REFUSED.labels("events", "413").inc()
        await _answer(send, 413, {"error": why + "; nothing was taken"}, [(b"connection", b"close")])

    async def _click(self, scope: Scope, name: str, send: Send) -> None:
        query: bytes = scope["query_string"]
        values = query_values(query)
        if len(name) > 64 or self.tokens.link(values.get(LINK_PARAM), name) is None:
            REFUSED.labels("click", "401").inc()
            await _answer(send, 401, {"ret": 401, "msg": "unknown link key"})
            return
        platform = PLATFORMS.get(name)
        if platform is not None:
            line, outcome = map_click(platform, query, datetime.now(UTC))
        else:
            line, outcome = None, "unknown platform"
        if line is None:
            # kept as a rejection: the request line itself (link key removed) travels to the config family
            # topic, where the worker rejects it invalid_json with these bytes
            rest = strip_link_key(query)
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            line = raw_path + (b"?" + rest if rest else b"")
        if not self.clicks.offer(line):
            REFUSED.labels("click", "503").inc()
            await _answer(send, 503, {"ret": 503, "msg": "busy, try again"}, [(b"retry-after", b"1")])
            return
        CLICKS.labels(name if platform is not None else "unknown", outcome).inc()
        await _raw(send, 200, _OK, _JSON)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.publisher.start()
                    self.clicks.start()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": f"cannot reach Kafka: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                left = await self.clicks.close(timeout_s=10.0)
                if left:
                    log.error("shutting down with %d monitor lines Kafka did not take", left)
                await self.publisher.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _raw(send, status, orjson.dumps(body), _JSON + (headers or []))


async def _raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
