"""Poison records between valid ones: a running worker stays up and attributes what follows.

Null (tombstone), empty, binary, oversized and deep-with-digits records, a
payment with ``1e-2000000000``, a batch of lines in one message and a valid
event on another family's topic all go to a real worker (and the sink) on the
embedded broker. The worker must stay up, exit on SIGTERM within its shutdown
time, and the reports must be those of a replay of the same lines (plus one
``invalid_json`` per empty or null message, which a file cannot hold).
"""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest
from kafka import KafkaProducer

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from streams.topics import FAMILIES, topic_name
from tests.hostile import event, nested
from tests.streams.pipeline import CLI, Pipeline, kill, replayed_reports, reports

pytestmark = pytest.mark.integration


def test_poison_records_do_not_stop_a_worker(tmp_path: Path) -> None:
    valid = list(generate(GeneratorConfig(seed=21, days=1, events=3_000, duplicate_share=0.02, malformed_share=0.0)))
    random.Random(2).shuffle(valid)
    first, middle = valid[:1000], valid[1000:2000]
    batch = [*middle[:40], b"   \t\r\n", middle[40].rstrip(b"\n") + b"\r\n"]  # a blank line and a CRLF inside
    poison = [
        b"\xff\xfe\x00\x01 not json at all",
        event("payment", extra=nested(1100, '"1234567890123456789012"')),
        event("payment", event_id='"poison-exp"', order_id='"po"', amount="1e-2000000000"),
        event("payment", event_id='"poison-big"', order_id='"pb"', amount="9" * 5000),
        event("click", event_id='"poison-offset"', ts='"2026-11-01T08:00:00+08:60"'),
        b'{"type":["click"]}',
        event("click", event_id='"big-line"', extra='"' + "x" * 1_200_000 + '"'),  # over the 1 MiB line limit
    ]
    wrong_topic = event("payment", event_id='"on-the-clicks-topic"', order_id='"wt"', amount='"6.00"')
    families = [topic_name("p.", f.name) for f in FAMILIES]
    nulls = 0
    expected = replayed_reports([*valid, *(p + b"\n" for p in poison), wrong_topic + b"\n"], tmp_path)

    with EmbeddedBroker() as broker, Pipeline(tmp_path, broker.bootstrap, "p.") as pipe:
        create_topics(broker.bootstrap, "p.", partitions=2)
        pipe.start(workers=1)
        produce(broker.bootstrap, "p.", first)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=8 << 20, acks="all")
        for topic in families:  # every family topic gets a tombstone and an empty value
            producer.send(topic, key=b"k", value=None)
            producer.send(topic, value=b"")
            nulls += 2
        for i, raw in enumerate(poison):
            producer.send(families[i % len(families)], value=raw)
        producer.send("p.money", value=b"".join(batch))  # one message, a batch of lines
        producer.send("p.clicks", key=b"wt", value=wrong_topic)
        producer.flush()
        producer.close()
        produce(broker.bootstrap, "p.", valid[1041:])  # what the batch did not hold, and the rest
        assert pipe.drained(180), pipe.tail()
        assert pipe.running(), f"a process died:\n{pipe.tail()}"
        assert kill(pipe.workers.pop(), signal.SIGTERM, timeout=40) < 30, "the worker did not stop on SIGTERM in time"
        pipe.stop()
    got = reports(pipe.dsn, tmp_path)
    rejected = dict(expected["rejects"]["rejected"])  # type: ignore[index]
    rejected["invalid_json"] = rejected.get("invalid_json", 0) + nulls
    assert got["rejects"] == {"rejected": rejected, "duplicates": expected["rejects"]["duplicates"]}  # type: ignore[index]
    assert got["roi"] == expected["roi"]
    assert got["commission"] == expected["commission"]
    # every rejected record keeps its own bytes, UTF-8 or not (the old intake once read them back as a hex string)
    shown = subprocess.run([*CLI, "rejects", "--db", pipe.dsn, "--show", "1000"], capture_output=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr.decode(errors="replace")
    rows = shown.stderr.decode().splitlines()
    assert any(row.endswith(f"(not UTF-8) {poison[0]!r}") for row in rows), rows[:5]
    assert any(row.endswith('{"type":["click"]}') for row in rows)
