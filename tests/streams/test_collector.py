"""``reelroi collect`` as a real process on loopback, with the real broker, real HTTP, real workers and the sink."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from attribution import testing as kit
from reelroi.collect.body import body_lines
from reelroi.collect.links import link_key_of_token, strip_link_key
from reelroi.collect.platforms import PLATFORMS, click_time, event_id_of, map_click
from reelroi.generator import GeneratorConfig, generate
from schemas.framing import frame_message
from streams.broker import EmbeddedBroker, free_port
from streams.produce import create_topics, partition_of
from streams.topics import all_topics, find_route
from tests.streams.pipeline import Pipeline, replayed_reports, reports

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]
MAX_BODY = 300_000
PARTITIONS = 3


class Env:
    def __init__(self, bootstrap: str, prefix: str, url: str, producer: str, buyer: str) -> None:
        self.bootstrap, self.prefix, self.url, self.producer, self.buyer = bootstrap, prefix, url, producer, buyer
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, body: bytes | Iterator[bytes], token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.producer}"} if token != "" else {}
        return self.http.post("/collect/v1/events", content=body, headers=headers)

    def click(self, platform: str, query: str, token: str | None = None) -> httpx.Response:
        key = link_key_of_token(token or self.producer, platform)
        return self.http.get(f"/collect/v1/click/{platform}?link_key={key}&{query}")


def _token(dsn: str, *args: str) -> str:
    done = subprocess.run([*CLI, "token", "create", "--db", dsn, *args], capture_output=True, check=True)
    return done.stdout.decode().strip()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("collect")
    tokens_dsn = f"chdb://{root / 'tokens'}"  # the collector's own token store: the embedded engine is one process
    producer = _token(tokens_dsn, "--role", "producer", "--name", "tests")
    buyer = _token(tokens_dsn, "--role", "buyer", "--subject", "b1")
    prefix = f"c{uuid.uuid4().hex[:6]}."
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, prefix, partitions=PARTITIONS)
        port = free_port()
        log = root / "collect.log"
        proc = subprocess.Popen(
            [*CLI, "collect", "--db", tokens_dsn, "--bootstrap", broker.bootstrap, "--topic-prefix", prefix,
             "--port", str(port), "--max-body-bytes", str(MAX_BODY)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise AssertionError(log.read_text())
        yield Env(broker.bootstrap, prefix, url, producer, buyer)
        os.killpg(proc.pid, signal.SIGTERM)
        # uvicorn drains (lifespan shutdown: the click buffer is flushed), then re-raises the SIGTERM it caught
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
        assert "did not take" not in log.read_text()


Message = tuple[str, int, bytes | None, bytes]


async def _messages(bootstrap: str, prefix: str) -> list[Message]:
    consumer = AIOKafkaConsumer(
        *all_topics(prefix), bootstrap_servers=bootstrap, group_id=uuid.uuid4().hex, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Message] = []
    quiet = 0
    try:
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=700)
            quiet = 0 if batch else quiet + 1
            got += [(tp.topic, tp.partition, m.key, m.value) for tp, ms in batch.items() for m in ms]
    finally:
        await consumer.stop()
    return got


def messages(env: Env) -> list[Message]:
    return asyncio.run(_messages(env.bootstrap, env.prefix))


def lines_of(got: list[Message]) -> list[bytes]:
    return [r.raw for *_, value in got for r in frame_message(value, "k", 1 << 20)]


def until_in_kafka(env: Env, wanted: list[bytes]) -> list[bytes]:
    for _ in range(20):
        lines = lines_of(messages(env))
        if all(w in lines for w in wanted):
            return lines
        time.sleep(0.5)
    raise AssertionError(f"not in Kafka: {[w for w in wanted if w not in lines][:3]}")


# --- pure parts -------------------------------------------------------------------------------------------


def test_body_lines_and_arrays() -> None:
    assert body_lines(b'{"a":1}\r\n \t\r\n{"b":2}\r') == [b'{"a":1}', b'{"b":2}\r']
    assert body_lines(b' [ {"a": "x,]\\"" , "n": [1, {"c": 2}]},\n  99999999999999999999999 ,"s"] ') == [
        b'{"a": "x,]\\"" , "n": [1, {"c": 2}]}',
        b"99999999999999999999999",
        b'"s"',
    ]
    assert body_lines(b'[{"a":\n1}]') == [b'{"a": 1}']  # a break between tokens becomes a space
    assert body_lines(b"[1,2") == [b"[1,2"] and body_lines(b"[1]\n[2]") == [b"[1]", b"[2]"]  # not one array
    assert body_lines(b"[]") == [] and body_lines(b"") == []


def test_click_mapping_per_platform() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    line, _ = map_click(
        PLATFORMS["oceanengine"],
        b"clickid=k1&promotion_id=p1&ts=1762000000123&oaid=__OAID__&idfa=0000-00&imei=m5&callback=cb%3D1",
        now,
    )
    assert json.loads(line or b"") == {
        "type": "click", "event_id": "oceanengine:k1", "ts": "2025-11-01T12:26:40.123Z", "click_id": "k1",
        "campaign_id": "p1", "device_id": "m5", "callback": "cb=1",
    }  # fmt: skip
    line, _ = map_click(PLATFORMS["tencent"], b"click_id=t1&adgroup_id=&campaign_id=g2&click_time=1762000000", now)
    event = json.loads(line or b"")
    assert (event["campaign_id"], event["ts"], event["device_id"]) == ("g2", "2025-11-01T12:26:40.000Z", "tencent:t1")
    long_cb = "x" * 300
    line, _ = map_click(PLATFORMS["kuaishou"], f"callback={long_cb}&aid=a1&oaid2=h".encode(), now)
    event = json.loads(line or b"")
    assert event["click_id"].startswith("cb-") and event["callback"] == long_cb and event["device_id"] == "h"
    assert event["ts"] == "2026-11-01T00:00:00.000Z"  # no platform time: the time it was received
    assert map_click(PLATFORMS["tencent"], b"adgroup_id=1", now) == (None, "no click id")
    assert map_click(PLATFORMS["oceanengine"], b"clickid=k", now) == (None, "no ad id")
    assert click_time("abc", now) == click_time("1", now) == "2026-11-01T00:00:00.000Z"
    assert len(event_id_of("tencent", "k" * 128)) <= 128
    assert strip_link_key(b"a=1&link_key=x.y&b=2") == b"a=1&b=2"


# --- the process ---------------------------------------------------------------------------------------------


def test_post_lines_and_array_arrive_batched_per_partition(env: Env) -> None:
    clicks = [kit.click(device_id=f"ct-pd{i}", event_id=f"ct-post-{i}", click_id=f"ct-pk{i}") for i in range(300)]
    pays = [kit.payment(order_id=f"ct-po{i}", event_id=f"ct-pay-{i}", user_id="ct-u1") for i in range(300)]
    as_lines = b"\n".join(clicks[:150] + pays[:150]) + b"\nnot json at all\n\n"
    assert env.post(as_lines).json() == {"taken": 301}
    as_array = b"[\n" + b",\n".join(clicks[150:] + pays[150:]) + b"\n]"
    response = env.post(as_array)
    assert (response.status_code, response.json()) == (202, {"taken": 300})
    got = messages(env)
    ours = [
        m for m in got if any(b"ct-post-" in ln or b"ct-pay-" in ln or b"not json" in ln for ln in m[3].split(b"\n"))
    ]
    assert sorted(lines_of(ours)) == sorted([*clicks, *pays, b"not json at all"])  # exact bytes
    assert len(ours) < 20  # batched: a few messages per partition, not one per line
    for topic, partition, _, value in ours:
        for line in value.split(b"\n"):
            found = find_route(line)
            if found is not None and found[1] is not None:
                assert topic == f"{env.prefix}{found[0]}" and partition == partition_of(found[1], PARTITIONS)


def test_over_the_limit_is_413_and_takes_nothing(env: Env) -> None:
    big = [
        kit.click(event_id=f"ct-big-{i}", device_id=f"ct-bd{i}", click_id=f"ct-bk{i}") for i in range(MAX_BODY // 80)
    ]
    body = b"\n".join(big)
    assert len(body) > MAX_BODY
    assert env.post(body).status_code == 413  # with a Content-Length
    assert env.post(iter([body[:200_000], body[200_000:]])).status_code == 413  # chunked, counted
    assert env.post(b"\n".join(big[: len(big) // 2])).status_code == 202  # what fits is taken
    lines = lines_of(messages(env))
    assert sum(b'"ct-big-' in ln for ln in lines) == len(big) // 2


def test_tokens(env: Env) -> None:
    assert env.post(b"{}", token="").status_code == 401
    assert env.post(b"{}", token=env.producer[:-2] + "xx").status_code == 401
    assert env.post(b"{}", token=env.buyer).status_code == 403
    assert env.click("tencent", "click_id=a&adgroup_id=b", token=env.buyer).status_code == 401
    assert env.http.get("/collect/v1/click/tencent?click_id=a&adgroup_id=b").status_code == 401
    wrong = link_key_of_token(env.producer, "kuaishou")  # a link is good for its own platform only
    assert env.http.get(f"/collect/v1/click/tencent?link_key={wrong}&click_id=a&adgroup_id=b").status_code == 401


def test_monitor_gets_become_clicks_and_unmappable_ones_rejections(env: Env) -> None:
    queries = {
        "oceanengine": "clickid=oe1&promotion_id=7301&ts=1762000000123&callback=B.cb1&oaid=__OAID__&idfa=&imei=md5imei",
        "tencent": "click_id=tx1&adgroup_id=2286&click_time=1762000000&callback=http%3A%2F%2Ft.qq.com%2Fc%3Fcb%3Dz"
        "&oaid=oaid9&muid=m",
        "kuaishou": "callback=KS-cb-1&aid=ks55&ts=1762000000999&oaid=&oaid2=oaidmd5",
    }
    for platform, query in queries.items():
        first = env.click(platform, query)
        assert (first.status_code, first.json()) == (200, {"ret": 0, "msg": "ok"})
        assert env.click(platform, query).status_code == 200  # the platform's retry
    expected = [
        {"type": "click", "event_id": "oceanengine:oe1", "ts": "2025-11-01T12:26:40.123Z", "click_id": "oe1",
         "campaign_id": "7301", "device_id": "md5imei", "callback": "B.cb1"},
        {"type": "click", "event_id": "tencent:tx1", "ts": "2025-11-01T12:26:40.000Z", "click_id": "tx1",
         "campaign_id": "2286", "device_id": "oaid9", "callback": "http://t.qq.com/c?cb=z"},
        {"type": "click", "event_id": "kuaishou:KS-cb-1", "ts": "2025-11-01T12:26:40.999Z", "click_id": "KS-cb-1",
         "campaign_id": "ks55", "device_id": "oaidmd5", "callback": "KS-cb-1"},
    ]  # fmt: skip
    unmappable = [("tencent", "adgroup_id=1&click_time=1"), ("nosuch", "clickid=1&aid=2")]
    for platform, query in unmappable:
        assert env.click(platform, query).status_code == 200  # kept, and the platform must not retry it
    raw = [f"/collect/v1/click/{p}?{q}".encode() for p, q in unmappable]
    lines = until_in_kafka(env, [json.dumps(e, separators=(",", ":")).encode() for e in expected] + raw)
    for event in expected:
        encoded = json.dumps(event, separators=(",", ":")).encode()
        assert lines.count(encoded) == 2  # the retry travels too; the worker counts it a duplicate
    config = [
        r.raw for t, _, _, v in messages(env) if t == f"{env.prefix}config" for r in frame_message(v, "k", 1 << 20)
    ]
    assert all(line in config for line in raw) and not any(b"link_key" in line for line in lines)


def test_worker_attributes_what_the_collector_took(env: Env, tmp_path: Path) -> None:
    # a monitor click, then the app's redirect with that click_id: the user is the campaign's
    assert (
        env.click("oceanengine", "clickid=ct-ATTR-1&promotion_id=camp-oe&ts=1762000000000&oaid=dev-x").status_code
        == 200
    )
    config = kit.campaign(
        event_id="ct-campaign", campaign_id="camp-oe", platform="douyin", buyer_id="b1", ts="2025-11-01T00:00:00Z"
    )
    redirect = kit.redirect(
        user_id="ct-u-attr", event_id="ct-redirect-attr", click_id="ct-ATTR-1", ts="2025-11-01T12:30:00Z"
    )
    pay = kit.payment(
        user_id="ct-u-attr", order_id="ct-o-attr", event_id="ct-pay-attr", amount="12.00", ts="2025-11-01T12:40:00Z"
    )
    assert env.post(b"\n".join([config, redirect, pay])).json() == {"taken": 3}
    generated = list(generate(GeneratorConfig(seed=4, days=1, events=3000, duplicate_share=0.02, malformed_share=0.01)))
    half = len(generated) // 2
    assert env.post(b"".join(generated[:half])).status_code == 202
    assert env.post(b"".join(generated[half:])).status_code == 202
    sent = until_in_kafka(env, [redirect, pay])
    expected = replayed_reports([line + b"\n" for line in sent], tmp_path)

    with Pipeline(tmp_path, env.bootstrap, env.prefix) as pipe:
        pipe.start(workers=2)
        assert pipe.drained(240), pipe.tail()
        pipe.stop()
    got = reports(pipe.dsn, tmp_path)
    assert got == expected, pipe.tail()
    rows = [r for r in got["roi"] if r["source_id"] == "camp-oe"]  # type: ignore[attr-defined]
    assert [(r["new_users"], r["revenue_total"]) for r in rows] == [(1, "12.00")], got["roi"]
    kept = [line for line in sent if line.startswith(b"/collect/v1/click/")]  # the unmappable monitor queries
    shown = subprocess.run([*CLI, "rejects", "--db", pipe.dsn, "--show", "500"], capture_output=True, cwd=tmp_path)
    for line in kept:
        assert any(row.startswith(b"invalid_json\t") and row.endswith(line) for row in shown.stderr.splitlines())
