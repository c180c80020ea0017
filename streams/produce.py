"""Publishing JSON lines to the family topics with kafka-python, keyed by ``topics.route``.

Every line given is sent as it is (blank ones excepted): judging it is the
worker's job, so a line that is not even JSON travels too and becomes a
rejection with its bytes there. What happened to each line is counted in a
``Tally``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.decode import TOO_LARGE
from schemas.framing import Record
from streams.topics import UNROUTABLE_FAMILY, all_topics, find_route, topic_name

COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
_BLANK = b" \t\r"  # SPEC 2


@dataclass
class Tally:
    """What ``produce`` did with its lines."""

    sent: Counter[str] = field(default_factory=Counter)  # per topic, acknowledged by the broker
    unroutable: int = 0  # not a JSON object with a known type: sent unkeyed to the config topic
    blank: int = 0  # skipped
    too_large: int = 0  # over the line limit: not sent
    failed: int = 0  # refused by the producer or the broker
    errors: Counter[str] = field(default_factory=Counter)  # why they failed

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
        return text


def create_topics(bootstrap: str, prefix: str, partitions: int = 6, replication: int = 1) -> list[str]:
    """Create every topic that does not exist yet; returns the ones created now."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reelroi-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in all_topics(prefix) if t not in existing]
        created = []
        for name in wanted:
            try:
                admin.create_topics([NewTopic(name, partitions, replication)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def sendable(records: Iterable[Record], tally: Tally) -> Iterator[bytes]:
    """The lines of framed records that can travel; those over the line limit are only counted."""
    for record in records:
        if record.verdict is not None and record.verdict.reason == TOO_LARGE:
            tally.too_large += 1
            continue
        yield record.raw


def produce(
    bootstrap: str,
    prefix: str,
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    compression: str = "none",
    tally: Tally | None = None,
) -> int:
    """Send every non-blank line (its LF and a CR before it removed) to its family topic with its key.

    Returns how many the broker acknowledged; ``tally`` (if given) gets the details.
    ``compression`` is the record-batch codec, one of ``COMPRESSION``.
    """
    if compression not in COMPRESSION:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSION)}, not {compression!r}")
    tally = tally if tally is not None else Tally()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        batch_size=512 * 1024,
        acks="all",
        retries=5,
        compression_type=None if compression == "none" else compression,
    )

    lock = threading.Lock()  # callbacks run on the producer's I/O thread

    def failed(exc: BaseException) -> None:
        with lock:
            tally.failed += 1
            tally.errors[type(exc).__name__] += 1

    def delivered(topic: str) -> Callable[[Any], None]:
        def done(_: Any) -> None:
            with lock:
                tally.sent[topic] += 1

        return done

    handled = 0
    try:
        for line in lines:
            raw = line[:-1] if line.endswith(b"\n") else line
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            if not raw.strip(_BLANK):
                tally.blank += 1
                continue
            found = find_route(raw)
            if found is None:
                tally.unroutable += 1
            family, key = found or (UNROUTABLE_FAMILY, None)
            topic = topic_name(prefix, family)
            try:
                future = producer.send(topic, key=key, value=raw)
            except KafkaError as exc:  # e.g. over max_request_size: this line only
                failed(exc)
            else:
                future.add_callback(delivered(topic))
                future.add_errback(failed)
            handled += 1
            if progress and handled % 10_000 == 0:
                progress(10_000)
        producer.flush()
        if progress:
            progress(handled % 10_000)
    finally:
        producer.close()
    return tally.total_sent
