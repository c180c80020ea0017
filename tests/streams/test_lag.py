"""``reelroi lag`` against the real broker, with offsets committed by real consumer groups; its pure verdict;
and ``observe_lag``, the same figures in /metrics."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from streams.broker import EmbeddedBroker
from streams.lag import LagReader, LagReport, PartitionLag, Section, SectionLag, build_report, drained, sections
from streams.produce import create_topics
from streams.stage_metrics import observe_lag

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]
ROW = re.compile(r"^(\S+)\s+(\d+)\s+([\d,]+)\s+([\d,]+|-)\s+([\d,]+)$")
PREFIX, GROUP = "l.", "lag-test"


def lag(bootstrap: str, *extra: str, timeout: float = 120) -> tuple[int, str, str]:
    argv = [*CLI, "lag", "--bootstrap", bootstrap, "--topic-prefix", PREFIX, "--group", GROUP, *extra]
    done = subprocess.run([*argv, "--db", "chdb:///nowhere"], capture_output=True, timeout=timeout)  # --db: ignored
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def rows(out: str) -> dict[tuple[str, int], tuple[int, int | None, int]]:
    """(topic, partition) -> (end, committed, lag) from the printed table."""
    found = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            committed = None if m[4] == "-" else int(m[4].replace(",", ""))
            found[(m[1], int(m[2]))] = (int(m[3].replace(",", "")), committed, int(m[5].replace(",", "")))
    return found


def send(bootstrap: str, records: dict[tuple[str, int], int]) -> None:
    """``n`` records to each (topic, partition), in one record batch each (Tansu lists its end short)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    for (topic, partition), n in records.items():
        for i in range(n):
            producer.send(PREFIX + topic, value=b"%d" % i, partition=partition)
    producer.flush()
    producer.close()


def consume_and_commit(bootstrap: str, group: str, topics: list[str]) -> None:
    """Read every record of ``topics`` as a member of ``group`` and commit what was read, as a consumer does."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        tps = [TopicPartition(PREFIX + t, p) for t in topics for p in sorted(consumer.partitions_for_topic(PREFIX + t))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
            if all(
                consumer.highwater(tp) is not None and consumer.position(tp) >= consumer.highwater(tp) for tp in tps
            ):
                break
        consumer.commit()
    finally:
        consumer.close()


def test_nothing_produced_is_drained_and_uncommitted_records_are_not() -> None:
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, PREFIX, partitions=2)
        code, out, _ = lag(broker.bootstrap)
        assert code == 0 and out.rstrip().endswith("two scans agree, every committed offset at its end"), out
        assert len(rows(out)) == 6 * 2 + 5 * 2 + 1 + 2  # families, stages (config: one partition), facts

        send(broker.bootstrap, {("clicks", 1): 3, ("stage.user", 0): 2, ("facts", 1): 4})
        started = time.monotonic()
        code, out, err = lag(broker.bootstrap, "--wait", "2")
        assert code == 1 and "not drained after 2s" in err
        assert 2 <= time.monotonic() - started < 20
        found = rows(out)
        assert found[(PREFIX + "clicks", 1)] == (3, None, 3)
        assert found[(PREFIX + "stage.user", 0)] == (2, None, 2)
        assert found[(PREFIX + "facts", 1)] == (4, None, 4)
        assert f"group {GROUP}: lag 5" in out and f"group {GROUP}-sink: lag 4" in out
        assert "user (group lag-test): lag 2" in out and "sink (group lag-test-sink): lag 4" in out


def test_drained_once_the_workers_and_the_sink_have_committed_everything() -> None:
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, PREFIX, partitions=2)
        send(broker.bootstrap, {("clicks", 0): 2, ("money", 1): 3, ("stage.order", 1): 2, ("stage.config", 0): 1})
        send(broker.bootstrap, {("facts", 0): 5, ("facts", 1): 1})
        consume_and_commit(broker.bootstrap, GROUP, ["clicks", "money", "stage.order", "stage.config"])

        code, out, _ = lag(broker.bootstrap)  # the facts are not written yet: the sink's group is behind
        found = rows(out)
        assert (
            code == 1 and found[(PREFIX + "stage.order", 1)] == (2, 2, 0) and found[(PREFIX + "money", 1)] == (3, 3, 0)
        )
        assert found[(PREFIX + "facts", 0)] == (5, None, 5) and f"group {GROUP}: lag 0" in out

        consume_and_commit(broker.bootstrap, GROUP, ["facts"])  # the wrong group's commit does not count
        assert lag(broker.bootstrap)[0] == 1

        consume_and_commit(broker.bootstrap, GROUP + "-sink", ["facts"])
        code, out, _ = lag(broker.bootstrap, "--wait", "10")
        assert code == 0, out
        assert rows(out)[(PREFIX + "facts", 0)] == (5, 5, 0) and f"group {GROUP}-sink: lag 0" in out

        send(broker.bootstrap, {("stage.touch", 0): 1})  # a stage record produced later: behind again
        code, out, _ = lag(broker.bootstrap)
        assert code == 1 and rows(out)[(PREFIX + "stage.touch", 0)] == (1, None, 1)


def test_lag_reader_sees_the_end_of_a_multi_record_batch() -> None:
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "m.", partitions=1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=500)
        for i in range(5):  # one record batch of five records
            producer.send("m.clicks", value=b"%d" % i, partition=0)
        producer.flush()
        producer.close()
        reader = LagReader(broker.bootstrap, "m.", "nobody")
        try:
            assert reader.ends()[("m.clicks", 0)] == 5
            assert reader.committed() == {} and reader.committed("nobody-sink") == {}
        finally:
            reader.close()


def test_lag_with_an_unreachable_broker_is_one_line_and_status_2() -> None:
    code, _, err = lag("127.0.0.1:1")
    assert code == 2 and err.startswith("reelroi lag: error: cannot reach Kafka at 127.0.0.1:1")


def test_lag_help_names_its_env_vars_and_the_ignored_db() -> None:
    done = subprocess.run([*CLI, "lag", "--help"], capture_output=True)
    text = " ".join(done.stdout.decode().split())
    assert "REELROI_KAFKA_GROUP" in text and "REELROI_KAFKA_BOOTSTRAP" in text and "--wait" in text
    assert "--db DSN deprecated, ignored" in text


# ---------------------------------------------------------------- the verdict, pure


def scan(committed: dict[str, dict[tuple[str, int], int]], ends: dict[tuple[str, int], int]) -> LagReport:
    return build_report(sections("t.", "g"), ends, committed)


def test_sections_follow_the_data_flow() -> None:
    names = [(s.name, s.group) for s in sections("t.", "g")]
    assert names == [("router", "g"), ("touch", "g"), ("order", "g"), ("user", "g"), ("spend", "g"),
                     ("config", "g"), ("postback", "g"), ("sink", "g-sink")]  # fmt: skip
    assert sections("t.", "g")[0].topics == tuple(f"t.{f}" for f in ("spend", "impressions", "clicks", "redirects",
                                                                     "money", "config"))  # fmt: skip


def test_drained_needs_two_settled_scans_with_the_same_ends() -> None:
    ends = {("t.clicks", 0): 10, ("t.stage.user", 0): 4, ("t.facts", 0): 7}
    workers = {("t.clicks", 0): 10, ("t.stage.user", 0): 4}
    settled = scan({"g": workers, "g-sink": {("t.facts", 0): 7}}, ends)
    assert settled.settled and not drained(None, settled)  # one scan is not quiescence
    assert drained(settled, settled)
    grown = scan({"g": workers, "g-sink": {("t.facts", 0): 7}}, {**ends, ("t.stage.user", 0): 5})
    assert not grown.settled and not drained(settled, grown)
    later = scan(
        {"g": {**workers, ("t.stage.user", 0): 5}, "g-sink": {("t.facts", 0): 7}}, {**ends, ("t.stage.user", 0): 5}
    )
    assert later.settled and not drained(settled, later)  # an output appeared between the scans: look again
    assert drained(later, later)
    wrong_group = scan({"g": {**workers, ("t.facts", 0): 7}}, ends)  # the facts committed by the workers' group
    assert not wrong_group.settled and wrong_group.group_totals() == {"g": 0, "g-sink": 7}
    assert scan({}, {}).settled and scan({}, {("t.clicks", 1): 0}).settled  # nothing produced: nothing to wait for


def test_render_groups_partitions_by_stage() -> None:
    report = LagReport([
        SectionLag(Section("router", "g", ("t.clicks",)), [PartitionLag("t.clicks", 0, 1_234, None)]),
        SectionLag(Section("sink", "g-sink", ("t.facts",)), [PartitionLag("t.facts", 0, 5, 5)]),
    ])  # fmt: skip
    text = report.render()
    assert text.splitlines()[1:3] == [
        "router (group g): lag 1,234",
        f"{'t.clicks':<28} {0:>4} {'1,234':>10} {'-':>10} {'1,234':>9}",
    ]
    assert rows(text) == {("t.clicks", 0): (1234, None, 1234), ("t.facts", 0): (5, 5, 0)}
    assert (
        "group g: lag 1,234" in text
        and "group g-sink: lag 0" in text
        and text.endswith("not yet attributed and written")
    )


# ------------------------------------------------------------------ /metrics


class FakeConsumer:
    def __init__(self, held: dict[TopicPartition, tuple[int | None, int | None, int]]) -> None:
        self.held = held  # tp -> (highwater, committed, position)
        self._committed_offset = {tp: c for tp, (_, c, _) in held.items() if c is not None}

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.held[tp][0]

    async def position(self, tp: TopicPartition) -> int:
        return self.held[tp][2]


def gauge(group: str, topic: str, partition: int) -> float | None:
    labels = {"group": group, "topic": topic, "partition": str(partition)}
    return REGISTRY.get_sample_value("reelroi_consumer_lag", labels)


def test_observe_lag_sets_the_gauge_of_held_partitions_and_drops_moved_ones() -> None:
    a, b, c = TopicPartition("o.stage.user", 0), TopicPartition("o.stage.user", 1), TopicPartition("o.clicks", 3)
    app = SimpleNamespace(consumer=FakeConsumer({a: (10, 4, 9), b: (7, None, 5), c: (None, None, 0)}))
    asyncio.run(observe_lag(app, "og"))
    assert gauge("og", "o.stage.user", 0) == 6  # committed, not consumed: a stage commits at its checkpoint
    assert gauge("og", "o.stage.user", 1) == 2  # nothing committed yet: the consumer's position
    assert gauge("og", "o.clicks", 3) is None  # not fetched yet: no figure rather than a wrong one
    other = SimpleNamespace(consumer=FakeConsumer({TopicPartition("o.facts", 0): (3, 3, 3)}))
    asyncio.run(observe_lag(other, "og-sink"))

    app.consumer = FakeConsumer({b: (9, 9, 9)})  # partition 0 moved to another worker
    asyncio.run(observe_lag(app, "og"))
    assert gauge("og", "o.stage.user", 0) is None and gauge("og", "o.stage.user", 1) == 0
    assert gauge("og-sink", "o.facts", 0) == 0  # another group's series are its own
