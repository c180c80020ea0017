"""How far the consumer group is behind: ``reelroi lag``.

Per family topic partition: the end offset (what has been produced), the
group's committed offset (what intake has written to ClickHouse and acked;
faust commits the next offset to read, as Kafka consumers do) and the
difference. With a ClickHouse server the attributor's saved cursor
(``attribution_offsets``) is read too, so "drained" means attributed. The
embedded ClickHouse (chdb) opens its directory in one process only, the
worker's, so there the attributor's progress cannot be read from outside and
only the group's offsets count.

The numbers are fetched here (kafka-python admin and consumer clients, one
look each); judging and printing them is pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streams.topics import FAMILIES, topic_name

TP = tuple[str, int]


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int  # the next offset the broker will write
    committed: int | None  # the group's committed offset (next to read); None: nothing committed yet
    attributed: int | None = None  # the attributor's next offset, when it can be read

    @property
    def lag(self) -> int:
        """Records produced that the group has not committed."""
        return max(0, self.end - (self.committed or 0))

    @property
    def unattributed(self) -> int | None:
        return None if self.attributed is None else max(0, self.end - self.attributed)


@dataclass(frozen=True)
class LagReport:
    group: str
    partitions: list[PartitionLag]
    attribution_note: str  # how the attributor's progress was (or could not be) known

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def unattributed(self) -> int | None:
        known = [p.unattributed for p in self.partitions]
        return None if any(n is None for n in known) else sum(n or 0 for n in known)

    @property
    def drained(self) -> bool:
        """Everything produced so far is committed (and attributed, where that can be known)."""
        return self.total == 0 and not self.unattributed

    def render(self) -> str:
        with_attr = any(p.attributed is not None for p in self.partitions)
        head = f"{'topic':<28} {'part':>4} {'end':>10} {'committed':>10} {'lag':>9}"
        rows = [head + (f" {'attributed':>10} {'behind':>9}" if with_attr else "")]
        for p in self.partitions:
            committed = "-" if p.committed is None else f"{p.committed:,}"
            row = f"{p.topic:<28} {p.partition:>4} {p.end:>10,} {committed:>10} {p.lag:>9,}"
            if with_attr:
                attributed = "-" if p.attributed is None else f"{p.attributed:,}"
                row += f" {attributed:>10} {p.unattributed or 0:>9,}"
            rows.append(row)
        total = f"group {self.group}: lag {self.total:,}"
        if self.unattributed is not None:
            total += f", not yet attributed {self.unattributed:,}"
        rows += [total + (" (drained)" if self.drained else ""), self.attribution_note]
        return "\n".join(rows)


def build_report(
    group: str,
    ends: Mapping[TP, int],
    committed: Mapping[TP, int],
    attributed: Mapping[TP, int] | None,
    note: str,
) -> LagReport:
    """Pure: the report from the offsets fetched. A partition the attributor never saved is at 0."""
    partitions = [
        PartitionLag(t, p, end, committed.get((t, p)), None if attributed is None else attributed.get((t, p), 0))
        for (t, p), end in sorted(ends.items())
    ]
    return LagReport(group, partitions, note)


class LagReader:
    """Fetches end offsets and the group's committed offsets."""

    def __init__(self, bootstrap: str, prefix: str, group: str) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = [topic_name(prefix, f.name) for f in FAMILIES]
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reelroi-lag", bootstrap_timeout_ms=10_000)

    def ends(self, timeout_s: float = 10.0) -> dict[TP, int]:
        """The high watermark of every family topic partition.

        Tansu answers ListOffsets(latest) with the last record batch's base offset
        plus one, not its last offset plus one (a batch of 5 at offset 0 reads 1),
        which would call a partition drained with records unread. A fetch reports
        the true high watermark, so each partition is fetched from just before the
        listed end; with Kafka the two agree. A fresh consumer each look, so no
        watermark is an old one.
        """
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, max_partition_fetch_bytes=1024
        )
        try:
            existing = set(consumer.topics())
            wanted = [
                TopicPartition(topic, p)
                for topic in self.topics
                if topic in existing
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if not wanted:
                return {}
            listed = consumer.end_offsets(wanted)
            consumer.assign(wanted)
            for tp in wanted:
                consumer.seek(tp, max(0, listed[tp] - 1))
            found: dict[TP, int] = {}
            deadline = time.monotonic() + timeout_s
            while len(found) < len(wanted) and time.monotonic() < deadline:
                consumer.poll(timeout_ms=200, max_records=100_000)
                for tp in wanted:
                    highwater = consumer.highwater(tp)
                    if highwater is not None:
                        found[(tp.topic, tp.partition)] = max(highwater, listed[tp])
            for tp in wanted:  # no fetch answered in time: the listed end is the best known
                found.setdefault((tp.topic, tp.partition), listed[tp])
            return found
        finally:
            consumer.close()

    def committed(self) -> dict[TP, int]:
        offsets = self.admin.list_group_offsets({self.group: None}).get(self.group, {})
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def close(self) -> None:
        self.admin.close()


def wait_drained(look: Callable[[], LagReport], wait_s: float, interval_s: float = 0.5) -> tuple[LagReport, bool]:
    """Look until the report is drained or ``wait_s`` has passed: (last report, drained)."""
    deadline = time.monotonic() + wait_s
    while True:
        report = look()
        if report.drained or time.monotonic() >= deadline:
            return report, report.drained
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
