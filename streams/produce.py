"""Publishing JSON lines to the family topics with kafka-python, in batches per partition.

Every line given is sent as it is (blank ones excepted): judging it is the
worker's job, so a line that is not even JSON travels too and becomes a
rejection with its bytes there. What happened to each line is counted in a
``Tally``.

Lines are grouped per (topic, partition) into one message value of JSON lines
joined by LF (SPEC 2), bounded by a count, a size and a linger time
(``Batching``). faust spends about 80 µs of CPU per Kafka message whatever it
holds, so a message of 1,000 lines costs a worker what one line did. A keyed
line's partition is the one Kafka's default partitioner (murmur2, as the Java
client and kafka-python compute it) gives its key, so a batch goes to the
partition its events' keys map to and a producer sending single events lands
every key where this one does.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.decode import TOO_LARGE
from schemas.framing import Record
from streams.topics import UNROUTABLE_FAMILY, all_topics, find_route, partitions_of, topic_name

COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
MAX_REQUEST_BYTES = 1 << 20  # kafka-python's max_request_size and about Kafka's default max.message.bytes
BATCH_BYTES_LIMIT = MAX_REQUEST_BYTES - 64 * 1024  # room for the record and request headers
_BLANK = b" \t\r"  # SPEC 2


class Batching(BaseSettings):
    """``REELROI_KAFKA_BATCH_*``: how many lines one Kafka message holds, at most.

    A message closes at ``lines`` lines, before it would pass ``max_bytes``, or
    ``linger_ms`` after its first line, whichever comes first. ``lines=1`` sends
    single-event messages, as outside producers do.
    """

    model_config = SettingsConfigDict(env_prefix="REELROI_KAFKA_BATCH_", extra="ignore", populate_by_name=True)

    lines: int = Field(1000, ge=1)
    max_bytes: int = Field(512 * 1024, ge=1, le=BATCH_BYTES_LIMIT, validation_alias="REELROI_KAFKA_BATCH_BYTES")
    linger_ms: float = Field(50.0, ge=0)


SINGLE = Batching(lines=1, max_bytes=BATCH_BYTES_LIMIT, linger_ms=0)  # one event per message, as before


@dataclass
class Tally:
    """What ``produce`` did with its lines."""

    sent: Counter[str] = field(default_factory=Counter)  # lines per topic, acknowledged by the broker
    messages: int = 0  # Kafka messages acknowledged (a message holds one line or a batch)
    unroutable: int = 0  # not a JSON object with a known type: sent unkeyed to the config topic
    blank: int = 0  # skipped
    too_large: int = 0  # over the line limit: not sent
    failed: int = 0  # lines refused by the producer or the broker
    errors: Counter[str] = field(default_factory=Counter)  # why they failed (in lines)

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    def summary(self) -> str:
        per_topic = ", ".join(f"{topic} {n:,}" for topic, n in sorted(self.sent.items())) or "none"
        text = f"sent {self.total_sent:,} ({per_topic}); {self.unroutable:,} unroutable (sent unkeyed to config)"
        if self.blank:
            text += f"; {self.blank:,} blank skipped"
        if self.too_large:
            text += f"; {self.too_large:,} over the line limit not sent"
        if self.failed:
            text += f"; {self.failed:,} FAILED ({', '.join(f'{e} {n:,}' for e, n in self.errors.most_common())})"
        return text + f"; in {self.messages:,} messages"


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions`` (kafka-python's murmur2)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Batch:
    """Lines bound for one (topic, partition); ``partition`` None lets the producer choose (unkeyed lines)."""

    topic: str
    partition: int | None
    key: bytes | None  # the lines' key while they all share one, else None
    started: float
    lines: list[bytes] = field(default_factory=list)
    size: int = 0  # bytes of ``value()``

    def value(self) -> bytes:
        """The lines joined by LF. The framing drops one CR before each LF (SPEC 2), so a line that
        ends with CR gets one more to keep its bytes; the last line has no LF after it."""
        lines = self.lines
        if any(line.endswith(b"\r") for line in lines[:-1]):
            lines = [line + b"\r" if line.endswith(b"\r") else line for line in lines[:-1]] + lines[-1:]
        return b"\n".join(lines)


def _cost(line: bytes) -> int:
    return len(line) + 1 + line.endswith(b"\r")  # its LF, and the CR kept for it


class Batcher:
    """Groups lines into message values per (topic, partition): pure, no Kafka, the clock is given."""

    def __init__(self, batching: Batching) -> None:
        self.batching = batching
        self.open: dict[tuple[str, int | None], Batch] = {}

    def add(self, topic: str, partition: int | None, key: bytes | None, line: bytes, now: float) -> list[Batch]:
        """Add one line; returns the batches it closed (at most two: a full one, and a line alone too big)."""
        closed = []
        slot = (topic, partition)
        batch = self.open.get(slot)
        if batch is not None and batch.size + _cost(line) > self.batching.max_bytes:
            closed.append(self.open.pop(slot))
            batch = None
        if batch is None:
            batch = self.open[slot] = Batch(topic, partition, key, now, size=-1)
        elif batch.key != key:
            batch.key = None
        batch.lines.append(line)
        batch.size += _cost(line)
        if len(batch.lines) >= self.batching.lines or batch.size >= self.batching.max_bytes:
            closed.append(self.open.pop(slot))
        return closed

    def due(self, now: float) -> list[Batch]:
        """The batches that have waited ``linger_ms`` since their first line."""
        linger = self.batching.linger_ms / 1000
        slots = [slot for slot, batch in self.open.items() if now - batch.started >= linger]
        return [self.open.pop(slot) for slot in slots]

    def drain(self) -> list[Batch]:
        batches = list(self.open.values())
        self.open.clear()
        return batches


def create_topics(bootstrap: str, prefix: str, partitions: int = 6, replication: int = 1) -> list[str]:
    """Create every topic that does not exist yet; returns the ones created now."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reelroi-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in all_topics(prefix) if t not in existing]
        created = []
        for name in wanted:
            try:
                admin.create_topics([NewTopic(name, partitions_of(prefix, name, partitions), replication)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def topic_partitions(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """How many partitions each existing topic has (what producers must partition by, whatever was configured)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="reelroi-admin")
    try:
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        consumer.close()


def sendable(records: Iterable[Record], tally: Tally) -> Iterator[bytes]:
    """The lines of framed records that can travel; those over the line limit are only counted."""
    for record in records:
        if record.verdict is not None and record.verdict.reason == TOO_LARGE:
            tally.too_large += 1
            continue
        yield record.raw


class _Sender:
    """Sends closed batches with kafka-python and counts what the broker acknowledged."""

    def __init__(self, producer: KafkaProducer, tally: Tally) -> None:
        self.producer = producer
        self.tally = tally
        self.lock = threading.Lock()  # callbacks run on the producer's I/O thread
        self.partitions: dict[str, int] = {}

    def partition_count(self, topic: str) -> int:
        if topic not in self.partitions:
            self.partitions[topic] = len(self.producer.partitions_for(topic) or ())
        return self.partitions[topic]

    def send(self, batch: Batch) -> None:
        n = len(batch.lines)
        try:
            future = self.producer.send(batch.topic, key=batch.key, value=batch.value(), partition=batch.partition)
        except KafkaError as exc:  # e.g. over max_request_size: this message only
            self._failed(n, exc)
            return
        future.add_callback(self._delivered(batch.topic, n))
        future.add_errback(lambda exc: self._failed(n, exc))

    def _failed(self, n: int, exc: BaseException) -> None:
        with self.lock:
            self.tally.failed += n
            self.tally.errors[type(exc).__name__] += n

    def _delivered(self, topic: str, n: int) -> Callable[[Any], None]:
        def done(_: Any) -> None:
            with self.lock:
                self.tally.sent[topic] += n
                self.tally.messages += 1

        return done


def produce(
    bootstrap: str,
    prefix: str,
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    compression: str = "none",
    tally: Tally | None = None,
    batching: Batching = SINGLE,
) -> int:
    """Send every non-blank line (its LF and a CR before it removed) to its family topic.

    Lines are batched per partition as ``batching`` says (``SINGLE``: one message
    per line, with its key). Returns how many lines the broker acknowledged;
    ``tally`` (if given) gets the details. ``compression`` is the record-batch
    codec, one of ``COMPRESSION``.
    """
    if compression not in COMPRESSION:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSION)}, not {compression!r}")
    tally = tally if tally is not None else Tally()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        acks="all",
        retries=5,
        compression_type=None if compression == "none" else compression,
    )
    sender = _Sender(producer, tally)
    batcher = Batcher(batching)
    lock = threading.Lock()  # the batcher is shared with the linger thread
    done = threading.Event()

    def linger() -> None:  # a slow input (a pipe) must not hold a started batch back
        while not done.wait(max(0.005, batching.linger_ms / 2000)):
            with lock:
                for batch in batcher.due(time.monotonic()):
                    sender.send(batch)

    lingering = threading.Thread(target=linger, name="produce-linger", daemon=True)
    handled = 0
    try:
        if batching.lines > 1:
            lingering.start()
        for line in lines:
            raw = line
            if raw.endswith(b"\n"):  # only a CR before the LF is not part of the event (SPEC 2)
                raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            if not raw.strip(_BLANK):
                tally.blank += 1
                continue
            found = find_route(raw)
            if found is None:
                tally.unroutable += 1
            family, key = found or (UNROUTABLE_FAMILY, None)
            topic = topic_name(prefix, family)
            count = sender.partition_count(topic) if key is not None else 0
            partition = partition_of(key, count) if key is not None and count else None
            with lock:
                for batch in batcher.add(topic, partition, key, raw, time.monotonic()):
                    sender.send(batch)
            handled += 1
            if progress and handled % 10_000 == 0:
                progress(10_000)
        done.set()
        if lingering.is_alive():
            lingering.join()
        for batch in batcher.drain():
            sender.send(batch)
        producer.flush()
        if progress:
            progress(handled % 10_000)
    finally:
        done.set()
        producer.close()
    return tally.total_sent
