"""The embedded broker, topic creation and keyed publishing, against the real Tansu broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import testing as kit
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from streams.topics import FAMILIES, all_topics, find_route, route

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


async def _consume(bootstrap: str, topics: list[str], expected: int) -> list[tuple[str, int, bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id="t", auto_offset_reset="earliest")
    await consumer.start()
    got: list[tuple[str, int, bytes | None, bytes]] = []
    try:
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                got += [(tp.topic, tp.partition, m.key, m.value) for m in messages]
            if len(got) >= expected:
                break
    finally:
        await consumer.stop()
    return got


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


def test_produce_sends_every_hostile_line_and_counts(tmp_path: Path) -> None:
    valid = kit.click(device_id="d1").rstrip(b"\n")
    source = tmp_path / "hostile.jsonl"
    source.write_bytes(b"\n".join([*HOSTILE, b" \t", valid]) + b"\n")
    with EmbeddedBroker() as broker:
        done = subprocess.run(
            [sys.executable, "-m", "reelroi.cli", "produce", str(source), "--bootstrap", broker.bootstrap,
             "--topic-prefix", "h.", "--compression", "zstd"],
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        got = asyncio.run(_consume(broker.bootstrap, all_topics("h."), len(HOSTILE) + 1))
    summary = done.stderr.decode().strip().splitlines()[-1]
    assert "sent 11 (h.clicks 4, h.config 6, h.money 1); 6 unroutable" in summary, summary
    assert sorted(v for _, _, _, v in got) == sorted([*HOSTILE, valid])  # byte for byte


def test_produce_help_shows_the_compression_env_var() -> None:
    done = subprocess.run([sys.executable, "-m", "reelroi.cli", "produce", "--help"], capture_output=True)
    assert "REELROI_KAFKA_COMPRESSION" in " ".join(done.stdout.decode().split())
