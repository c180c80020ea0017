"""The embedded broker, topic creation and keyed publishing, against the real Tansu broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from attribution import testing as kit
from schemas.framing import frame_message
from streams.broker import EmbeddedBroker
from streams.produce import Batching, Tally, create_topics, produce
from streams.topics import FAMILIES, all_topics, find_route, route, topic_name

pytestmark = pytest.mark.integration


def test_route_keys_each_family_by_its_state_key() -> None:
    assert route(kit.payment(order_id="o9", user_id="u1")) == ("money", b"o9")
    assert route(kit.ad_unlock(user_id="u7")) == ("money", b"u7")
    assert route(kit.click(device_id="d3")) == ("clicks", b"d3")
    assert route(kit.redirect(user_id="u2")) == ("redirects", b"u2")
    assert route(kit.spend(campaign_id="c1")) == ("spend", b"c1")
    assert route(kit.fx(currency="USD")) == ("config", b"USD")
    assert route(b"{broken") == ("config", None)
    assert route(b'{"type":"nope"}') == ("config", None)


Message = tuple[str, int, bytes | None, bytes]


async def _consume(bootstrap: str, topics: list[str], expected: int, lines: bool = False) -> list[Message]:
    """Messages (or, with ``lines``, the lines they hold, framed as the worker frames them)."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id="t", auto_offset_reset="earliest")
    await consumer.start()
    got: list[Message] = []
    try:
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                got += [(tp.topic, tp.partition, m.key, m.value) for m in messages]
            if sum(len(frame_message(v, "k", 1 << 20)) if lines else 1 for *_, v in got) >= expected:
                break
    finally:
        await consumer.stop()
    return got


def _lines(messages: list[Message]) -> list[bytes]:
    return [r.raw for *_, value in messages for r in frame_message(value, "k", 1 << 20)]


def test_produce_publishes_every_line_keyed_and_topic_creation_is_idempotent() -> None:
    lines = [kit.payment(order_id=f"o{i % 7}", user_id=f"u{i}") for i in range(200)]
    lines += [kit.click(device_id=f"d{i % 5}") for i in range(100)] + [b"garbage", b"   "]
    with EmbeddedBroker() as broker:
        created = create_topics(broker.bootstrap, "t.", partitions=3)
        assert sorted(created) == sorted(all_topics("t."))
        assert create_topics(broker.bootstrap, "t.", partitions=3) == []
        assert produce(broker.bootstrap, "t.", lines) == 301
        got = asyncio.run(_consume(broker.bootstrap, all_topics("t."), 301))
    assert len(got) == 301
    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    for topic, partition, key, _ in got:
        partitions_of_key[key].add(partition)
    assert all(len(p) == 1 for k, p in partitions_of_key.items() if k is not None)  # one key, one partition
    assert sorted(v for t, _, _, v in got if t == "t.config") == [b"garbage"]


HOSTILE = [
    b'{"type":["click"]}',
    b'{"type":{"a":1},"device_id":"d1"}',
    b'{"type":"click","device_id":5}',
    b'{"type":"click","device_id":"' + b"x" * 129 + b'"}',
    b'{"type":"payment","order_id":"o1","amount":' + b"9" * 5000 + b"}",
    b"[" * 5000,
    b'{"a":' * 1100 + b"1" * 19,
    b"\xff\xfe\x00binary",
    b'"just a string"',
    b'{"type":"click","device_id":"\\ud800"}',
]


def test_route_never_raises_and_keys_only_ids() -> None:
    assert route(HOSTILE[0]) == ("config", None)
    assert route(HOSTILE[1]) == ("config", None)
    assert route(HOSTILE[2]) == ("clicks", None)  # not an id: no key
    assert route(HOSTILE[3]) == ("clicks", None)  # longer than an id may be
    assert route(HOSTILE[4]) == ("money", b"o1")  # valid JSON orjson cannot hold still routes
    assert [route(line)[0] for line in HOSTILE[5:9]] == ["config"] * 4
    assert find_route(HOSTILE[0]) is None and find_route(kit.click(device_id="d")) == ("clicks", b"d")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.sampled_from(["type", "device_id", "order_id", "x"]), inner),
    ).map(lambda v: json.dumps({"type": v} if not isinstance(v, dict) else v).encode())
)
def test_route_takes_any_bytes(raw: bytes) -> None:
    family, key = route(raw)
    assert family in {f.name for f in FAMILIES}
    assert key is None or isinstance(key, bytes)


@pytest.mark.parametrize("batch_lines", ["1", "1000"])
def test_produce_sends_every_hostile_line_and_counts(tmp_path: Path, batch_lines: str) -> None:
    valid = kit.click(device_id="d1").rstrip(b"\n")
    cr_ended = kit.click(device_id="d2").rstrip(b"\n") + b"\r"  # a CR that is not the one before the LF
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\n".join([*HOSTILE, b" \t", valid, cr_ended + b"\r", valid]) + b"\n")
    sent = [*HOSTILE, valid, cr_ended, valid]
    with EmbeddedBroker() as broker:
        done = subprocess.run(
            [sys.executable, "-m", "reelroi.cli", "produce", str(source), "--bootstrap", broker.bootstrap,
             "--topic-prefix", "h.", "--compression", "zstd", "--batch-lines", batch_lines],
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        got = asyncio.run(_consume(broker.bootstrap, all_topics("h."), len(sent), lines=True))
    summary = done.stderr.decode().strip().splitlines()[-1]
    assert "sent 13 (h.clicks 6, h.config 6, h.money 1); 6 unroutable" in summary, summary
    assert sorted(_lines(got)) == sorted(sent)  # byte for byte, as the worker frames them
    if batch_lines == "1":
        assert sorted(v for *_, v in got) == sorted(sent) and summary.endswith("in 13 messages")
    else:  # the 6 unroutable lines travel together; a few messages in all
        assert len(got) < len(sent) and summary.endswith(f"in {len(got)} messages")


def _keyed_lines() -> list[bytes]:
    lines = [kit.payment(order_id=f"o{i}", user_id=f"u{i}", amount=f"{i % 90}.5") for i in range(1500)]
    lines += [kit.click(device_id=f"d{i % 300}") for i in range(1500)]
    return lines + [kit.redirect(user_id=f"u{i}") for i in range(600)] + [kit.spend(campaign_id="c1")]


def test_batches_go_to_the_partition_kafkas_default_partitioner_gives_their_keys() -> None:
    lines = _keyed_lines()
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "b.", partitions=4)
        tally = Tally()
        assert (
            produce(broker.bootstrap, "b.", lines, tally=tally, batching=Batching(lines=100, max_bytes=20_000)) == 3601
        )
        batched = asyncio.run(_consume(broker.bootstrap, all_topics("b."), tally.messages))
        # the same keys through a stock producer, partition left to kafka-python's DefaultPartitioner
        stock = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for line in lines:
            family, key = route(line)
            stock.send(topic_name("c.", family), key=key, value=line)
        stock.flush()
        stock.close()
        single = asyncio.run(_consume(broker.bootstrap, all_topics("c."), len(lines)))
    assert len(batched) == tally.messages < 3601 / 20
    stock_partition = {(t.removeprefix("c."), k): p for t, p, k, _ in single}
    for topic, partition, key, value in batched:
        assert len(value) <= 20_000 and value.count(b"\n") < 100
        for record in frame_message(value, "k", 1 << 20):
            family, line_key = route(record.raw)
            assert stock_partition[(family, line_key)] == partition  # where a single-event producer sends it
        if value.count(b"\n") == 0:
            assert key == route(value)[1]  # a message of one line keeps its key
    assert sorted(_lines(batched)) == sorted(line.rstrip(b"\n") for line in lines)


def test_a_started_batch_waits_no_longer_than_the_linger() -> None:
    def slow() -> Iterator[bytes]:
        yield kit.click(device_id="d1")
        yield kit.click(device_id="d2")
        time.sleep(2.0)  # a pipe that goes quiet
        yield kit.click(device_id="d3")

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "l.", partitions=1)
        started = time.time()
        produce(broker.bootstrap, "l.", slow(), batching=Batching(lines=1000, linger_ms=100))
        got = asyncio.run(_timestamps(broker.bootstrap, "l.clicks", 2))
    first, last = got
    assert first[0] - started < 1.0 and first[1].count(b"\n") == 1  # d1 and d2 left before the pause ended
    assert last[0] - started >= 2.0 and b"d3" in last[1]


async def _timestamps(bootstrap: str, topic: str, expected: int) -> list[tuple[float, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="ts", auto_offset_reset="earliest")
    await consumer.start()
    got: list[tuple[float, bytes]] = []
    try:
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=500)
            got += [(m.timestamp / 1000, m.value or b"") for messages in batch.values() for m in messages]
            if len(got) >= expected:
                break
    finally:
        await consumer.stop()
    return sorted(got)


def test_produce_help_shows_every_env_var() -> None:
    done = subprocess.run([sys.executable, "-m", "reelroi.cli", "produce", "--help"], capture_output=True)
    text = " ".join(done.stdout.decode().split())
    for var in ("COMPRESSION", "BATCH_LINES", "BATCH_BYTES", "BATCH_LINGER_MS"):
        assert f"REELROI_KAFKA_{var}" in text


def test_produce_refuses_batch_bounds_it_cannot_send(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_bytes(kit.click(device_id="d1"))
    cli = [sys.executable, "-m", "reelroi.cli", "produce", str(source), "--bootstrap", "127.0.0.1:1"]
    zero = subprocess.run([*cli, "--batch-lines", "0"], capture_output=True)
    assert zero.returncode == 2 and b"must be at least 1" in zero.stderr
    huge = subprocess.run([*cli, "--batch-bytes", str(4 << 20)], capture_output=True)
    assert huge.returncode == 2 and b"--batch-bytes (REELROI_KAFKA_BATCH_BYTES) must be 1 to 983,040" in huge.stderr
