"""``REELROI_POSTBACKS=1``: a real worker decides postbacks as replay's driver does, and hands the sends on.

One ``reelroi worker`` on the embedded broker. Its ``send`` decisions are on
``<prefix>postbacks``, each on the partition of its idempotency key, and its
decisions on ``facts``; both equal what LocalPipeline with the postback stage
decides for the same lines sent one by one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from attribution import testing as kit
from attribution.policy import Policy
from attribution.stages import wire
from attribution.stages.facts import decode as decode_fact
from attribution.stages.local import LocalPipeline
from attribution.stages.postbacks import PostbackStage
from attribution.stages.records import POSTBACK, POSTBACKS, SendPostback
from streams.broker import EmbeddedBroker
from streams.lag import LagReader, wait_drained
from streams.produce import create_topics, partition_of, produce
from streams.topics import FACTS_TOPIC, topic_name

pytestmark = pytest.mark.integration
PREFIX = "pb."
GROUP = "reelroi-attribution"
SETTLE_S = 60


def _lines() -> list[bytes]:
    day = "2026-11-02T"
    lines = [
        kit.campaign(event_id="cmp-a", ts="2026-11-01T00:00:00+08:00", campaign_id="cA", platform="douyin"),
        kit.campaign(event_id="cmp-b", ts="2026-11-01T00:00:00+08:00", campaign_id="cB", platform="tencent"),
        kit.line(
            type="postback_rule",
            event_id="rule-b",
            ts="2026-11-01T00:00:00+08:00",
            campaign_id="cB",
            kinds=["first_pay"],
            send_ratio="1",
        ),
    ]
    for i in range(12):
        campaign = "cA" if i % 2 else "cB"
        lines += [
            kit.click(
                event_id=f"c{i}",
                ts=f"{day}09:{i:02d}:00+08:00",
                click_id=f"k{i}",
                device_id=f"d{i}",
                campaign_id=campaign,
                callback=f"cb{i}",
            ),
            kit.redirect(event_id=f"r{i}", ts=f"{day}09:{i:02d}:30+08:00", user_id=f"u{i}", click_id=f"k{i}"),
            kit.pay(f"o{i}a", f"u{i}", f"{day}09:{i + 1:02d}:00+08:00", "6"),
            kit.pay(f"o{i}b", f"u{i}", f"{day}09:{i + 2:02d}:00+08:00", "3"),
        ]
    lines.append(kit.redirect(event_id="clock", ts=f"{day}12:00:00+08:00", user_id="someone"))  # the clock moves on
    return lines


def _expected(lines: list[bytes]) -> set[tuple[str, str]]:
    pipeline = LocalPipeline(Policy(), extra={POSTBACK: PostbackStage(Policy(), SETTLE_S)})
    decisions = set()
    for record in kit.records(lines):
        for fact in pipeline.process([record]):
            if fact.kind == "postback":
                decisions.add((fact.row.key, fact.row.decision))
    return decisions


def _read(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[tuple[int, bytes]] = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                out.extend((tp.partition, line) for m in messages for line in (m.value or b"").split(b"\n") if line)
        return out
    finally:
        consumer.close()


def test_a_worker_with_postbacks_on_sends_what_replays_driver_decides(tmp_path: Path) -> None:
    lines = _lines()
    expected = _expected(lines)
    assert {d for _, d in expected} == {"send", "held_kind"}
    env = {**os.environ, "REELROI_METRICS_PORT": "0", "REELROI_STAGE_CHECKPOINT_S": "1", "REELROI_LOG_LEVEL": "WARN",
           "REELROI_POSTBACKS": "1", "REELROI_POSTBACK_SETTLE_S": str(SETTLE_S)}  # fmt: skip
    log = tmp_path / "worker.log"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, PREFIX, partitions=3)
        argv = [sys.executable, "-m", "reelroi.cli", "worker", "--bootstrap", broker.bootstrap,
                "--topic-prefix", PREFIX, "--state-dir", str(tmp_path / "state")]  # fmt: skip
        with log.open("ab") as out:
            worker = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            for line in lines:  # one by one, in order: the clock advances as the events come
                produce(broker.bootstrap, PREFIX, [line])
            time.sleep(1.0)
            reader = LagReader(broker.bootstrap, PREFIX, GROUP)
            reader.sections = [s for s in reader.sections if s.group == GROUP]
            reader.topics = [t for s in reader.sections for t in s.topics]
            try:
                assert wait_drained(reader.scan, 240)[1], log.read_text(errors="replace")[-3000:]
            finally:
                reader.close()
            # the last conversions are decided by the postback partition's own tick, once it has been
            # quiet for REELROI_POSTBACK_TICK_S (2 s) after draining: look until they are there
            deadline = time.monotonic() + 60
            while True:
                facts = [decode_fact(line) for _, line in _read(broker.bootstrap, topic_name(PREFIX, FACTS_TOPIC))]
                decided: dict[str, tuple[int, str]] = {}
                for fact in facts:
                    if fact.kind == "postback" and fact.version >= decided.get(fact.row.key, (-1, ""))[0]:
                        decided[fact.row.key] = (fact.version, fact.row.decision)
                if {(k, d) for k, (_, d) in decided.items()} == expected or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            postbacks = topic_name(PREFIX, POSTBACKS)
            sends = _read(broker.bootstrap, postbacks)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
    assert {(k, d) for k, (_, d) in decided.items()} == expected
    records = [(p, wire.decode(line)) for p, line in sends]
    assert all(isinstance(r, SendPostback) for _, r in records)
    assert {r.decision.key for _, r in records} == {k for k, d in expected if d == "send"}  # type: ignore[union-attr]
    for partition, record in records:
        assert partition == partition_of(record.route.encode(), 3)
