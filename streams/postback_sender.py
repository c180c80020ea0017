"""``reelroi postback``: send the postback stage's ``send`` decisions to the ad platforms (SPEC 7, 回传).

One faust consumer in its own group (``<REELROI_KAFKA_GROUP>-postback``) reads
``<prefix>postbacks``: each line a ``SendPostback`` stage record
(attribution/stages/wire.py) holding one ``PostbackDecision``. Every decision
gets its platform's request (streams/postback_platforms.py, pure), sent through
a per-platform token bucket, and is retried with exponential backoff until the
platform accepts it (HTTP 2xx and its success code), answers a permanent error,
or ``REELROI_POSTBACK_GIVE_UP_S`` (24 h) have passed since the decision was
published: then it is ``failed``.

**The ledger.** Every attempt publishes a ``delivery`` fact to ``<prefix>facts``
(``sending`` with the attempt's number and the previous answer), and the end
one more (``sent`` or ``failed`` with the last answer), each under version
``time.time_ns()``, so the sink keeps the latest. A record is acked only once
every decision in it is final and that final fact is in Kafka (acks=all).

**At least once.** Decisions run concurrently (at most
``REELROI_POSTBACK_MAX_PENDING``), so a slow or retrying one does not hold up
the others; faust commits only the contiguous acked offsets, so after a crash
or a rebalance the records from the oldest unfinished one on are read again
and re-sent, with the same idempotency key (the decision's key: the
``X-Idempotency-Key`` header everywhere, and Tencent's ``outer_action_id``,
the only field a platform documents for deduplication). The give-up deadline
counts from the record's Kafka timestamp, so a restart does not extend it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Iterable
from typing import Any

import aiohttp
import faust
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Counter, Gauge
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.errors import ConfigError
from attribution.outputs import PostbackDecision, PostbackDelivery
from attribution.stages import wire
from attribution.stages.facts import Fact
from attribution.stages.facts import encode as encode_fact
from attribution.stages.records import POSTBACKS
from streams import metrics
from streams import postback_platforms as pp
from streams.kafka_settings import KafkaSettings
from streams.produce import partition_of, topic_partitions
from streams.stage_worker import faust_app
from streams.topics import FACTS_TOPIC, topic_name

log = logging.getLogger("reelroi.postback")
RESPONSE_LIMIT = 64 * 1024  # bytes of an answer read; a platform answers with a small JSON object

SENT = Counter("reelroi_postback_sent", "Postbacks the platform accepted", ["platform"])
FAILED = Counter(
    "reelroi_postback_failed", "Postbacks given up: a permanent error, refused, or out of time", ["platform"]
)
ATTEMPTS = Counter(
    "reelroi_postback_attempts",
    "HTTP attempts by their outcome (success|retryable|permanent|timeout)",
    ["platform", "outcome"],
)
PENDING = Gauge("reelroi_postback_pending", "Decisions taken from Kafka and not final yet", ["platform"])
OLDEST = Gauge("reelroi_postback_oldest_pending_seconds", "Age of the oldest pending decision since it was published")
BAD = Counter(
    "reelroi_postback_bad_records", "Lines of the postbacks topic that are not SendPostback records (skipped)"
)


class PostbackSettings(BaseSettings):
    """``REELROI_POSTBACK_*``: where requests go, how fast, and how long to keep trying."""

    model_config = SettingsConfigDict(env_prefix="REELROI_POSTBACK_", extra="ignore")

    give_up_s: float = 86_400.0  # from the decision's publication; then ``failed``
    retry_first_s: float = 1.0
    retry_most_s: float = 600.0
    timeout_s: float = 10.0  # per attempt, connect to last byte
    rate: float = 50.0  # requests/s per platform unless REELROI_POSTBACK_RATE_<PLATFORM> (Tencent allows 4000/min)
    rate_oceanengine: float | None = None
    rate_tencent: float | None = None
    rate_kuaishou: float | None = None
    url_oceanengine: str = ""  # replaces https://analytics.oceanengine.com
    url_tencent: str = ""  # replaces the callback's https://api.e.qq.com
    url_kuaishou: str = ""  # replaces the callback's http://ad.partner.gifshow.com
    tencent_access_token: SecretStr | None = None
    max_pending: int = 1000  # decisions in flight, at most: the consumer waits beyond it
    batch_messages: int = 100
    metrics_port: int = 9110

    def rate_of(self, platform: str) -> float:
        found: float | None = getattr(self, f"rate_{platform}", None)
        return found if found is not None else self.rate

    def targets(self) -> pp.Targets:
        token = self.tencent_access_token.get_secret_value() if self.tencent_access_token else ""
        bases = {"oceanengine": self.url_oceanengine, "tencent": self.url_tencent, "kuaishou": self.url_kuaishou}
        return pp.Targets(bases, token)


def postbacks_topic(prefix: str) -> str:
    return topic_name(prefix, POSTBACKS)


def ensure_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create ``name`` if it does not exist (the postback stage's output; its own worker may not have yet)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reelroi-admin")
    try:
        if name not in set(admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def decisions_of(origin: str, value: bytes | None) -> list[PostbackDecision]:
    """The decisions of one message's lines; a line that is not a SendPostback is logged, counted, skipped."""
    found: list[PostbackDecision] = []
    for n, line in enumerate((value or b"").split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            decision = getattr(wire.decode(line), "decision", None)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            decision, why = None, f"{type(exc).__name__}: {exc}"
        else:
            why = "not a SendPostback record"
        if isinstance(decision, PostbackDecision):
            found.append(decision)
        else:
            BAD.inc()
            log.error("bad postback line at %s line %d (%s), skipped: %r", origin, n, why, line[:120])
    return found


class Sender:
    """Delivers decisions: the attempts, the pauses, the ledger facts. One per process, on faust's loop."""

    def __init__(self, app: faust.App, prefix: str, settings: PostbackSettings, facts_partitions: int) -> None:
        self.app, self.settings = app, settings
        self.facts_topic, self.facts_partitions = topic_name(prefix, FACTS_TOPIC), facts_partitions
        self.targets = settings.targets()
        now = time.monotonic()
        self.buckets = {
            p: pp.TokenBucket(settings.rate_of(p), max(1.0, settings.rate_of(p)), now) for p in pp.PLATFORMS
        }
        self.pending: dict[int, tuple[str, float]] = {}  # id -> (platform, published at)
        self.slots = asyncio.Semaphore(settings.max_pending)
        self.session: aiohttp.ClientSession | None = None
        self.random = random.Random()
        self.tasks: set[asyncio.Task[None]] = set()

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200), auto_decompress=True)
        return self.session

    async def close(self) -> None:
        """Stop every delivery (their records stay unacked: the next sender re-reads them) and the session."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()

    def oldest_s(self) -> float:
        return max((time.time() - at for _, at in self.pending.values()), default=0.0)

    async def _publish(self, row: PostbackDelivery) -> Any:
        """Hand one delivery fact to the producer; the returned future resolves once the broker has it."""
        line = encode_fact(Fact("delivery", time.time_ns(), row))
        p = partition_of(row.key.encode("utf-8"), self.facts_partitions)
        while True:
            try:
                return await self.app.producer.send(self.facts_topic, None, line, p, None, None)
            except (KafkaError, AssertionError, OSError) as exc:
                log.error("publishing a delivery fact failed, retrying in 1s: %r", exc)
                await asyncio.sleep(1.0)

    async def _final(self, row: PostbackDelivery, earlier: list[Any]) -> None:
        """Publish the final fact and return once the broker holds it (earlier facts are older versions)."""
        await asyncio.gather(*earlier, return_exceptions=True)
        while True:
            future = await self._publish(row)
            try:
                await future
                return
            except Exception as exc:  # noqa: BLE001 - the producer's error types vary; the final fact must land
                log.error("the final delivery fact of %s was not taken (%r), publishing it again", row.key, exc)
                await asyncio.sleep(1.0)

    async def _attempt(self, platform: str, request: pp.Request) -> pp.Verdict:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            async with self._session().request(
                request.method, request.url, data=request.body or None, headers=list(request.headers),
                timeout=timeout, allow_redirects=False,
            ) as response:  # fmt: skip
                body = await response.content.read(RESPONSE_LIMIT)
                return pp.judge(platform, response.status, body)
        except TimeoutError:
            return pp.Verdict(pp.TIMEOUT, f"timeout after {self.settings.timeout_s:g}s")
        except aiohttp.ClientError as exc:
            return pp.Verdict(pp.RETRYABLE, pp.short(f"no answer: {type(exc).__name__}: {exc}"))

    async def deliver(self, decision: PostbackDecision, published_s: float) -> None:
        """Send ``decision`` until it is final; return once its final fact is in Kafka."""
        platform = decision.platform if decision.platform in pp.PLATFORMS else "none"
        deadline = published_s + self.settings.give_up_s
        attempts, answer = 0, ""
        facts: list[Any] = []
        while True:
            request = pp.build(decision, self.targets, int(time.time()), uuid.uuid4().hex)
            if isinstance(request, pp.Refused):
                FAILED.labels(platform).inc()
                log.warning("postback %s refused: %s", decision.key, request.reason)
                await self._final(PostbackDelivery(decision.key, "failed", attempts, request.reason, _now_us()), facts)
                return
            wait = self.buckets[platform].take(time.monotonic())
            if wait > 0:  # queued behind the platform's rate: built again, so Tencent's timestamp is fresh
                await asyncio.sleep(wait)
                request = pp.build(decision, self.targets, int(time.time()), uuid.uuid4().hex)
                assert isinstance(request, pp.Request)  # the same decision, refused or not alike
            attempts += 1
            facts.append(await self._publish(PostbackDelivery(decision.key, "sending", attempts, answer, _now_us())))
            verdict = await self._attempt(platform, request)
            ATTEMPTS.labels(platform, verdict.outcome).inc()
            answer = verdict.answer
            if verdict.outcome == pp.SUCCESS:
                SENT.labels(platform).inc()
                await self._final(PostbackDelivery(decision.key, "sent", attempts, answer, _now_us()), facts)
                return
            pause = pp.backoff_s(
                attempts, self.settings.retry_first_s, self.settings.retry_most_s, self.random.random()
            )
            if verdict.outcome == pp.PERMANENT or time.time() + pause > deadline:
                FAILED.labels(platform).inc()
                why = answer if verdict.outcome == pp.PERMANENT else f"gave up after {attempts} attempts: {answer}"
                log.warning("postback %s failed: %s", decision.key, why)
                await self._final(PostbackDelivery(decision.key, "failed", attempts, pp.short(why), _now_us()), facts)
                return
            log.info("postback %s attempt %d: %s; again in %.1fs", decision.key, attempts, answer, pause)
            await asyncio.sleep(pause)

    async def run(self, decision: PostbackDecision, published_s: float) -> None:
        """``deliver`` with the pending gauges kept and the slot given back, whatever happens."""
        platform = decision.platform if decision.platform in pp.PLATFORMS else "none"
        token = id(asyncio.current_task())
        self.pending[token] = (platform, published_s)
        PENDING.labels(platform).inc()
        try:
            await self.deliver(decision, published_s)
        finally:
            del self.pending[token]
            PENDING.labels(platform).dec()
            self.slots.release()

    async def start(self, decisions: Iterable[PostbackDecision], published_s: float) -> list[asyncio.Task[None]]:
        """One task per decision, each once a slot is free (this is where the consumer waits)."""
        tasks = []
        for decision in decisions:
            await self.slots.acquire()
            task = asyncio.ensure_future(self.run(decision, published_s))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            tasks.append(task)
        return tasks


def _now_us() -> int:
    return time.time_ns() // 1000


def build_postback_app(kafka: KafkaSettings, settings: PostbackSettings | None = None) -> faust.App:
    """The faust app of ``reelroi postback``: one agent on the postbacks topic."""
    settings = settings or PostbackSettings()
    app = faust_app(kafka, f"{kafka.group}-postback", settings.batch_messages)
    source = app.topic(
        postbacks_topic(kafka.topic_prefix), value_type=bytes, key_type=bytes, partitions=kafka.partitions
    )
    facts = topic_name(kafka.topic_prefix, FACTS_TOPIC)
    facts_partitions = topic_partitions(kafka.bootstrap, [facts])[facts]  # the real count, not the setting
    if facts_partitions < 1:
        raise ConfigError(f"topic {facts} missing on {kafka.bootstrap} (reelroi topics create makes it)")
    sender = Sender(app, kafka.topic_prefix, settings, facts_partitions)
    OLDEST.set_function(sender.oldest_s)
    for platform in (*pp.PLATFORMS, "none"):  # every series at 0 from the start, so increase() sees the first
        SENT.labels(platform)
        FAILED.labels(platform)
        PENDING.labels(platform)
        for outcome in (pp.SUCCESS, pp.RETRYABLE, pp.PERMANENT, pp.TIMEOUT):
            ATTEMPTS.labels(platform, outcome)
    BAD.inc(0)

    acks: set[asyncio.Future[None]] = set()

    @app.agent(source, concurrency=1)
    async def send_postbacks(stream: faust.StreamT[bytes]) -> None:
        batches = stream.noack_take(settings.batch_messages, within=0.2)  # type: ignore[attr-defined]
        async for events in batches:
            for event in events:
                m = event.message
                decisions = decisions_of(f"{m.topic}:{m.partition}:{m.offset}", m.value)
                published = m.timestamp if 0 < m.timestamp <= time.time() else time.time()
                tasks = await sender.start(decisions, published)
                acking = asyncio.ensure_future(_ack_when_done(stream, event, tasks))
                acks.add(acking)  # held until done: the loop keeps only weak references to tasks
                acking.add_done_callback(acks.discard)

    async def close_session(app: faust.App, **kwargs: Any) -> None:
        await sender.close()

    app.on_before_shutdown.connect(close_session)  # type: ignore[arg-type]

    return app


async def _ack_when_done(stream: faust.StreamT[bytes], event: Any, tasks: list[asyncio.Task[None]]) -> None:
    """Ack ``event`` once every decision in it is final (its facts in Kafka); never if one was cut off."""
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:  # cancelled at shutdown, or a bug: left unacked, so read and sent again
        if not all(isinstance(r, asyncio.CancelledError) for r in failures):
            log.error("postback delivery crashed, record left for a re-read: %r", failures[0])
        return
    await stream.ack(event)


def serve_postback_metrics(port: int) -> int:
    """Serve ``/metrics`` on ``port`` (``REELROI_POSTBACK_METRICS_PORT``, 9110; 0: off), its own port."""
    return metrics.serve_metrics(metrics.MetricsSettings(port=port))
