"""How far attribution is behind: ``reelroi lag``.

Two consumer groups hold the pipeline's progress (docs/design/streaming.md):
the workers' (``REELROI_KAFKA_GROUP``) over the input family topics (the
router) and the five stage topics, and the sink's (``<group>-sink``) over the
facts topic. Per partition: the end offset (what has been produced), the
group's committed offset (the next offset to read, as Kafka consumers commit
it) and the difference, grouped by stage in the order data flows.

**Drained** means everything produced so far is attributed and written to
ClickHouse: two consecutive scans, a short pause apart, in which every end
offset is unchanged and every committed offset equals its end, for every
topic of both groups. A scan reads the ends first, then the committed offsets.

Why two such scans are enough, although each stage feeds the next: every
agent delivers its outputs (acks=all) *before* it acks the input that made
them (the router before acking its batch, a stage before the checkpoint that
acks its records, the sink after its ClickHouse write). So when the first scan
finds every record below its ends committed, the outputs of all of them were
in their topics before that scan read its committed offsets, hence before the
second scan read its ends; those ends being the same as the first scan's, the
outputs were already below them, and committed too. One scan alone is not
enough: a record processed between reading the ends and reading the committed
offsets commits its input while its outputs lie past the ends just read.

The numbers are fetched here (kafka-python admin and consumer clients, one
look each); judging and printing them is pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streams.topics import FACTS_TOPIC, FAMILIES, STAGE_TOPICS, topic_name

TP = tuple[str, int]


@dataclass(frozen=True)
class Section:
    """One step of the data flow: its name, the group that consumes its topics, and the topics."""

    name: str
    group: str
    topics: tuple[str, ...]


def sections(prefix: str, group: str) -> list[Section]:
    """Router (the family topics), every stage, then the sink, in the order data flows."""
    router = Section("router", group, tuple(topic_name(prefix, f.name) for f in FAMILIES))
    stages = [Section(t.removeprefix("stage."), group, (topic_name(prefix, t),)) for t in STAGE_TOPICS]
    sink = Section("sink", sink_group(group), (topic_name(prefix, FACTS_TOPIC),))
    return [router, *stages, sink]


def sink_group(group: str) -> str:
    """The sink's consumer group (streams/sink_stage.py names its app so)."""
    return f"{group}-sink"


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int  # the next offset the broker will write
    committed: int | None  # the group's committed offset (next to read); None: nothing committed yet

    @property
    def lag(self) -> int:
        """Records produced that the group has not committed."""
        return max(0, self.end - (self.committed or 0))


@dataclass(frozen=True)
class SectionLag:
    section: Section
    partitions: list[PartitionLag]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(frozen=True)
class LagReport:
    """One scan: every partition of every section, and the ends it read."""

    parts: list[SectionLag]

    @property
    def ends(self) -> dict[TP, int]:
        return {(p.topic, p.partition): p.end for s in self.parts for p in s.partitions}

    @property
    def settled(self) -> bool:
        """Every committed offset equals its end (a partition never written to needs no commit)."""
        return all(s.lag == 0 for s in self.parts)

    def group_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for s in self.parts:
            totals[s.section.group] = totals.get(s.section.group, 0) + s.lag
        return totals

    def render(self, drained: bool = False) -> str:
        rows = [f"{'topic':<28} {'part':>4} {'end':>10} {'committed':>10} {'lag':>9}"]
        for s in self.parts:
            rows.append(f"{s.section.name} (group {s.section.group}): lag {s.lag:,}")
            for p in s.partitions:
                committed = "-" if p.committed is None else f"{p.committed:,}"
                rows.append(f"{p.topic:<28} {p.partition:>4} {p.end:>10,} {committed:>10} {p.lag:>9,}")
        for group, total in self.group_totals().items():
            rows.append(f"group {group}: lag {total:,}")
        rows.append(
            "drained: two scans agree, every committed offset at its end"
            if drained
            else "not drained: records produced are not yet attributed and written"
        )
        return "\n".join(rows)


def build_report(parts: list[Section], ends: Mapping[TP, int], committed: Mapping[str, Mapping[TP, int]]) -> LagReport:
    """Pure: the scan from the offsets fetched (``committed`` by group). Topics not on the broker are left out."""
    report = []
    for section in parts:
        offsets = committed.get(section.group, {})
        partitions = [
            PartitionLag(t, p, end, offsets.get((t, p)))
            for topic in section.topics  # in the section's order, partitions in number order
            for (t, p), end in sorted(ends.items())
            if t == topic
        ]
        report.append(SectionLag(section, partitions))
    return LagReport(report)


def drained(previous: LagReport | None, current: LagReport) -> bool:
    """Two consecutive scans, both settled, with the same ends (the module docstring says why)."""
    return previous is not None and previous.settled and current.settled and previous.ends == current.ends


class LagReader:
    """Fetches end offsets of the pipeline's topics and both groups' committed offsets."""

    def __init__(self, bootstrap: str, prefix: str, group: str) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.sections = sections(prefix, group)
        self.topics = [t for s in self.sections for t in s.topics]
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reelroi-lag", bootstrap_timeout_ms=10_000)

    def scan(self) -> LagReport:
        ends = self.ends()  # first: what was produced before this look
        return build_report(self.sections, ends, {s.group: self.committed(s.group) for s in self.sections})

    def ends(self, timeout_s: float = 10.0) -> dict[TP, int]:
        """The high watermark of every partition of the pipeline's topics.

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

    def committed(self, group: str | None = None) -> dict[TP, int]:
        """A group's committed offsets (the workers' group unless told)."""
        group = group or self.group
        offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def close(self) -> None:
        self.admin.close()


def wait_drained(scan: Callable[[], LagReport], wait_s: float, pause_s: float = 0.5) -> tuple[LagReport, bool]:
    """Scan until two consecutive scans say drained, or ``wait_s`` has passed: (last scan, drained).

    At least two scans are taken, ``pause_s`` apart, even with ``wait_s`` 0.
    """
    deadline = time.monotonic() + wait_s
    previous = None
    while True:
        current = scan()
        if drained(previous, current):
            return current, True
        if time.monotonic() >= deadline and (previous is not None or not current.settled):
            return current, False  # a settled first scan is still confirmed by a second
        previous = current
        time.sleep(pause_s)
