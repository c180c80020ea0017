"""``reelroi postback`` as a process on the embedded broker, against local platform receivers.

SendPostback lines go to ``<prefix>postbacks``; the sender runs as its own
process (its own session, killed as a group) with REELROI_POSTBACK_URL_* at
tests/streams/postback_receivers.py, which checks every request as its
platform documents it. The ledger is read back from the facts topic with a
plain kafka-python consumer and folded, per key, to the delivery fact of the
greatest version: what the sink would keep.

- success, retryable then success, permanent (no retry), a timeout retried,
  a platform without a sender (refused, no request), several decisions in one
  message; the metrics on the sender's own port; every record acked;
- kill -9 while every request is in flight (the receiver holds its answers),
  restart: each decision ends ``sent`` once, and the receiver saw the retry
  with the same idempotency key.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from attribution.outputs import PostbackDecision, PostbackDelivery
from attribution.stages import wire
from attribution.stages.facts import decode as decode_fact
from attribution.stages.records import SendPostback
from streams.broker import EmbeddedBroker, free_port
from streams.lag import LagReader
from streams.postback_sender import postbacks_topic
from streams.produce import create_topics
from streams.topics import FACTS_TOPIC, topic_name
from tests.streams.postback_receivers import OK, PERMANENT, RETRYABLE, SLOW, TIMEOUT, Receivers

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]
PARTITIONS = 2
CALLBACKS = {
    "oceanengine": "B.oe-{n}",
    "tencent": "https://api.e.qq.com/v3.0/user_actions/add?cb=Y2Itez{n}&conv_id=10001",
    "kuaishou": "http://ad.partner.gifshow.com/track/activate?callback=ks-{n}",
    "": "cb-{n}",
}


def decision(n: int, platform: str, kind: str) -> PostbackDecision:
    order = f"o-{n}" if kind == "pay" else ""
    callback = CALLBACKS[platform].format(n=n)
    key = hashlib.sha256(f"{platform}|{callback}|{kind}|{order or f'u-{n}'}".encode()).hexdigest()
    now_us = time.time_ns() // 1000
    return PostbackDecision(
        key, platform, f"c-{n}", f"{platform}:k-{n}", callback, f"u-{n}", order, kind,
        Decimal("18.80") if kind == "pay" else Decimal(0), now_us - 900_000_000, now_us, "send", "",
    )  # fmt: skip


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL, timeout: float = 60.0) -> float:
    """Signal the process's group and wait for it: seconds until it exited."""
    started = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=timeout)
    return time.monotonic() - started


class Sender:
    """``reelroi postback`` processes on one broker, prefix and group, their output in one log."""

    def __init__(self, tmp: Path, bootstrap: str, prefix: str, env: dict[str, str]) -> None:
        self.bootstrap, self.prefix = bootstrap, prefix
        self.log = tmp / "postback.log"
        self.group = f"pb-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "REELROI_KAFKA_GROUP": self.group, "REELROI_LOG_LEVEL": "WARN",
                    "REELROI_METRICS_PORT": "0", "REELROI_POSTBACK_TENCENT_ACCESS_TOKEN": "tk-test",
                    "REELROI_POSTBACK_RETRY_FIRST_S": "0.3", "REELROI_POSTBACK_RETRY_MOST_S": "1", **env}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, metrics_port: int = 0) -> None:
        argv = [*CLI, "postback", "--bootstrap", self.bootstrap, "--topic-prefix", self.prefix,
                "--metrics-port", str(metrics_port)]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    def stop(self, sig: int = signal.SIGTERM) -> float:
        assert self.process is not None
        return kill(self.process, sig)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            kill(self.process, signal.SIGKILL)


def publish(bootstrap: str, prefix: str, messages: list[list[PostbackDecision]]) -> None:
    """Each inner list one Kafka message: its decisions' SendPostback lines joined by LF, keyed by the first."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for batch in messages:
        value = b"\n".join(wire.encode(SendPostback(d)) for d in batch)
        producer.send(postbacks_topic(prefix), key=batch[0].key.encode(), value=value)
    producer.flush()
    producer.close()


def deliveries(bootstrap: str, prefix: str) -> list[tuple[int, PostbackDelivery]]:
    """Every delivery fact on the facts topic, as (version, row)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1500)  # fmt: skip
    topic = topic_name(prefix, FACTS_TOPIC)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    out = []
    while any(consumer.position(tp) < ends[tp] for tp in parts):
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                for line in record.value.split(b"\n"):
                    if line.strip():
                        fact = decode_fact(line)
                        if fact.kind == "delivery":
                            out.append((fact.version, fact.row))
    consumer.close()
    return out


def ledger(bootstrap: str, prefix: str) -> dict[str, PostbackDelivery]:
    """Per key, the row of the greatest version: what the sink keeps."""
    best: dict[str, tuple[int, PostbackDelivery]] = {}
    for version, row in deliveries(bootstrap, prefix):
        if row.key not in best or version > best[row.key][0]:
            best[row.key] = (version, row)
    return {k: row for k, (_, row) in best.items()}


def wait_final(
    bootstrap: str, prefix: str, keys: list[str], sender: Sender, timeout: float = 60.0
) -> dict[str, PostbackDelivery]:
    deadline = time.monotonic() + timeout
    while True:
        rows = ledger(bootstrap, prefix)
        if all(k in rows and rows[k].status != "sending" for k in keys):
            return rows
        assert time.monotonic() < deadline, f"not final: {[(k[:8], rows.get(k)) for k in keys]}\n{sender.tail()}"
        assert sender.process is not None and sender.process.poll() is None, sender.tail()
        time.sleep(0.5)


def committed_all(bootstrap: str, prefix: str, group: str, timeout: float = 20.0) -> bool:
    """The sender's group has committed every record of the postbacks topic (true ends: streams/lag.py)."""
    reader = LagReader(bootstrap, prefix, group)
    reader.topics = [postbacks_topic(prefix)]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ends, offsets = reader.ends(), reader.committed(f"{group}-postback")
            if ends and all(offsets.get(tp, 0) >= end for tp, end in ends.items()):
                return True
            time.sleep(0.5)
        return False
    finally:
        reader.close()


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    raise AssertionError(f"{name}{{{want}}} not in the metrics")


def test_outcomes_retries_refusals_metrics_and_acks(tmp_path: Path) -> None:
    prefix = f"pb{uuid.uuid4().hex[:6]}."
    sent_first = decision(1, "oceanengine", "pay")
    retried = decision(2, "tencent", "activate")
    permanent = decision(3, "kuaishou", "pay")
    timed_out = decision(4, "oceanengine", "activate")
    tencent_pay = decision(5, "tencent", "pay")
    kuaishou_activate = decision(6, "kuaishou", "activate")
    no_sender = decision(7, "", "activate")
    batch = [
        decision(10 + i, p, k)
        for i, (p, k) in enumerate([("oceanengine", "activate"), ("tencent", "pay"), ("kuaishou", "pay")])
    ]
    everything = [sent_first, retried, permanent, timed_out, tencent_pay, kuaishou_activate, no_sender, *batch]
    port = free_port()
    with EmbeddedBroker() as broker, Receivers(hold_s=3.0) as rx:
        create_topics(broker.bootstrap, prefix, PARTITIONS)
        rx.plan("tencent", retried.key, RETRYABLE, OK)
        rx.plan("kuaishou", permanent.key, PERMANENT, OK)  # the OK is never asked for
        rx.plan("oceanengine", timed_out.key, TIMEOUT, OK)
        publish(broker.bootstrap, prefix, [[d] for d in everything[:7]] + [batch])
        with Sender(
            tmp_path,
            broker.bootstrap,
            prefix,
            {**rx.env(), "REELROI_POSTBACK_TIMEOUT_S": "1", "REELROI_POSTBACK_RATE_TENCENT": "2"},
        ) as sender:
            sender.start(metrics_port=port)
            rows = wait_final(broker.bootstrap, prefix, [d.key for d in everything], sender)
            assert committed_all(broker.bootstrap, prefix, sender.group), sender.tail()
            scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            assert sender.stop() < 30
        assert rx.problems() == []
        facts = deliveries(broker.bootstrap, prefix)

    def final(d: PostbackDecision) -> tuple[str, int]:
        return rows[d.key].status, rows[d.key].attempts

    assert final(sent_first) == ("sent", 1) and rx.got(sent_first.key) == 1
    assert final(retried) == ("sent", 2) and rx.got(retried.key) == 2
    assert final(permanent) == ("failed", 1) and rx.got(permanent.key) == 1  # not retried
    assert "callbackinfo decoded failure" in rows[permanent.key].last_answer
    assert final(timed_out) == ("sent", 2) and rx.got(timed_out.key) == 2
    assert final(no_sender) == ("failed", 0) and rx.got(no_sender.key) == 0
    assert "no postback sender" in rows[no_sender.key].last_answer
    for d in (tencent_pay, kuaishou_activate, *batch):
        assert final(d) == ("sent", 1), d
        assert rx.got(d.key) == 1
    assert rows[sent_first.key].last_answer.startswith("200 code=0")
    tencent = [r.at for r in rx.requests() if r.platform == "tencent"]  # 2/s, bursts of 2
    assert len(tencent) == 4
    assert all(at - tencent[0] >= (i - 1) * 0.5 - 0.05 for i, at in enumerate(tencent) if i >= 2)
    # every attempt left a "sending" fact with its number before the final one
    trail = sorted((v, r.status, r.attempts) for v, r in facts if r.key == retried.key)
    assert [(s, a) for _, s, a in trail] == [("sending", 1), ("sending", 2), ("sent", 2)]

    assert metric(scraped, "reelroi_postback_sent_total", platform="oceanengine") == 3
    assert metric(scraped, "reelroi_postback_sent_total", platform="tencent") == 3
    assert metric(scraped, "reelroi_postback_sent_total", platform="kuaishou") == 2
    assert metric(scraped, "reelroi_postback_failed_total", platform="kuaishou") == 1
    assert metric(scraped, "reelroi_postback_failed_total", platform="none") == 1
    assert metric(scraped, "reelroi_postback_attempts_total", platform="tencent", outcome="retryable") == 1
    assert metric(scraped, "reelroi_postback_attempts_total", platform="kuaishou", outcome="permanent") == 1
    assert metric(scraped, "reelroi_postback_attempts_total", platform="oceanengine", outcome="timeout") == 1
    assert metric(scraped, "reelroi_postback_pending", platform="tencent") == 0
    assert metric(scraped, "reelroi_postback_oldest_pending_seconds") == 0


def test_kill_9_in_flight_then_restart_sends_each_once_and_sigterm_leaves_retries_unacked(tmp_path: Path) -> None:
    prefix = f"pb{uuid.uuid4().hex[:6]}."
    decisions = [decision(20 + i, p, k) for i, (p, k) in enumerate(
        [("oceanengine", "pay"), ("tencent", "pay"), ("kuaishou", "pay"), ("oceanengine", "activate"),
         ("tencent", "activate"), ("kuaishou", "activate")])]  # fmt: skip
    keys = [d.key for d in decisions]
    stubborn = decision(30, "tencent", "pay")  # keeps failing until the third sender
    with EmbeddedBroker() as broker, Receivers(hold_s=30.0) as rx:
        create_topics(broker.bootstrap, prefix, PARTITIONS)
        for d in decisions:
            rx.plan(d.platform, d.key, SLOW)  # the first request of each is held: in flight when the sender dies
        rx.plan("tencent", stubborn.key, *[RETRYABLE] * 1000)
        publish(broker.bootstrap, prefix, [[d] for d in decisions])
        with Sender(tmp_path, broker.bootstrap, prefix, {**rx.env(), "REELROI_POSTBACK_TIMEOUT_S": "60"}) as sender:
            sender.start()
            deadline = time.monotonic() + 60
            while not all(rx.got(k) == 1 for k in keys):
                assert time.monotonic() < deadline and sender.process.poll() is None, sender.tail()  # type: ignore[union-attr]
                time.sleep(0.2)
            sender.stop(signal.SIGKILL)  # no answer seen, nothing acked, no final fact
            assert set(r.status for r in ledger(broker.bootstrap, prefix).values()) <= {"sending"}

            sender.start()
            rows = wait_final(broker.bootstrap, prefix, keys, sender)
            assert committed_all(broker.bootstrap, prefix, sender.group), sender.tail()

            publish(broker.bootstrap, prefix, [[stubborn]])
            while rx.got(stubborn.key) < 3:
                assert sender.process.poll() is None, sender.tail()  # type: ignore[union-attr]
                time.sleep(0.2)
            assert sender.stop() < 15  # SIGTERM mid-retry: out promptly, the record left unacked
            assert ledger(broker.bootstrap, prefix)[stubborn.key].status == "sending"
            assert not committed_all(broker.bootstrap, prefix, sender.group, timeout=2)

            rx.unplan("tencent", stubborn.key)
            sender.start()
            final = wait_final(broker.bootstrap, prefix, [stubborn.key], sender)[stubborn.key]
            assert committed_all(broker.bootstrap, prefix, sender.group), sender.tail()
            sender.stop()
        assert rx.problems() == []
        facts = deliveries(broker.bootstrap, prefix)
    assert final.status == "sent" and final.attempts == 1  # a new process counts its own attempts
    for d in decisions:
        assert rows[d.key].status == "sent", (d, rows[d.key])
        assert sum(1 for _, r in facts if r.key == d.key and r.status == "sent") == 1
        seen = rx.requests(d.key)
        assert len(seen) >= 2 and {r.key for r in seen} == {d.key}  # the retry carried the same idempotency key
        if d.platform == "tencent":
            assert {r.body["actions"][0]["outer_action_id"] for r in seen} == {d.key}
