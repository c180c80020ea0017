"""The embedded broker, topic creation and keyed publishing, against the real Tansu broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer

from attribution import testing as kit
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from streams.topics import all_topics, route

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
