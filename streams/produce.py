"""Publishing JSON lines to the family topics with kafka-python, keyed by ``topics.route``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.topics import all_topics, route, topic_name


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


def produce(bootstrap: str, prefix: str, lines: Iterable[bytes], progress: Callable[[int], None] | None = None) -> int:
    """Send every non-blank line to its family topic with its key; returns the count sent."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks="all", retries=5)
    sent = 0
    try:
        for line in lines:
            raw = line.strip()
            if not raw:
                continue
            family, key = route(raw)
            producer.send(topic_name(prefix, family), key=key, value=raw)
            sent += 1
            if progress and sent % 10_000 == 0:
                progress(10_000)
        producer.flush()
        if progress:
            progress(sent % 10_000)
    finally:
        producer.close()
    return sent
