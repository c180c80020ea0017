"""Postbacks end to end (issue 13 point 3): monitor GETs -> collector -> broker -> stages -> sender -> receiver.

Every part as a process: ``reelroi collect`` (its own token store), one
``reelroi worker`` with ``REELROI_POSTBACKS=1``, the sink, ``reelroi postback``
pointed at the Ocean Engine receiver of tests/streams/postback_receivers.py
(which checks every request as docs/postbacks.md says and answers success).

Two douyin campaigns (their postbacks go to ``oceanengine``): ``cA`` without a
rule (activate and every pay at ratio 1), ``cB`` with a ``postback_rule`` of
``send_ratio`` 0. Their clicks come in as monitor-link GETs with a
``__CALLBACK_PARAM__`` token; redirects (``click_id`` the platform's click id),
payments and configuration as POSTs. Every event of the first POST lies within
the settle delay of the first redirect, so nothing is due before the stages
have it all; a later POST moves the data clock past every settle moment.

The receiver gets one ``active`` per acquired user and one ``active_pay`` (in
fen) per counted payment of ``cA``, and only the ``active`` of ``cB``; each
with the click's callback and the decision's idempotency key. The ledger
(``reelroi postbacks`` on the sink's database) says ``sent`` for each and
``held_ratio`` for ``cB``'s pays; ``reelroi roi`` and ``commission`` of the
stream equal those of ``reelroi replay`` of the same events, with the rule and
without it: rules hold postbacks back, never figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from attribution import testing as kit
from attribution.stages.facts import decode as decode_fact
from attribution.stages.postbacks import idempotency_key
from reelroi.collect.links import link_key_of_token
from schemas.framing import frame_message
from streams.broker import EmbeddedBroker, free_port
from streams.produce import create_topics
from streams.topics import FACTS_TOPIC, FAMILIES, topic_name
from tests.streams.pipeline import Pipeline, replayed_reports, reports, wait_for, workers_drained
from tests.streams.postback_receivers import Receivers
from tests.streams.test_postback_sender import Sender, ledger

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]
PARTITIONS = 3
SETTLE_S = 60
DAY = "2026-11-02T"
USERS = 3  # per campaign
PAYS = ("6.00", "12.34")  # each user's payments, CNY


def _ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def _token(dsn: str, *args: str) -> str:
    done = subprocess.run([*CLI, "token", "create", "--db", dsn, *args], capture_output=True, check=True)
    return done.stdout.decode().strip()


class Collector:
    """``reelroi collect`` on loopback, with a producer token of its own store."""

    def __init__(self, root: Path, bootstrap: str, prefix: str) -> None:
        dsn = f"chdb://{root / 'tokens'}"
        self.token = _token(dsn, "--role", "producer", "--name", "e2e")
        self.log = root / "collect.log"
        port = free_port()
        self.process = subprocess.Popen(
            [*CLI, "collect", "--db", dsn, "--bootstrap", bootstrap, "--topic-prefix", prefix, "--port", str(port)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None, self.log.read_text()
            time.sleep(0.3)

    def click(self, platform: str, query: str) -> None:
        key = link_key_of_token(self.token, platform)
        response = self.http.get(f"/collect/v1/click/{platform}?link_key={key}&{query}")
        assert (response.status_code, response.json()) == (200, {"ret": 0, "msg": "ok"})

    def post(self, lines: list[bytes]) -> None:
        response = self.http.post(
            "/collect/v1/events", content=b"\n".join(lines), headers={"Authorization": f"Bearer {self.token}"}
        )
        assert (response.status_code, response.json()) == (202, {"taken": len(lines)})

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def input_lines(bootstrap: str, prefix: str) -> list[bytes]:
    """Every event line on the input topics (what the collector wrote), each ending in LF, for replay."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in (topic_name(prefix, f.name) for f in FAMILIES)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[bytes] = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for messages in consumer.poll(timeout_ms=1000).values():
                out += [r.raw + b"\n" for m in messages for r in frame_message(m.value or b"", "k", 1 << 20)]
        return out
    finally:
        consumer.close()


def decisions(bootstrap: str, prefix: str) -> int:
    """How many postback decisions are on the facts topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        topic = topic_name(prefix, FACTS_TOPIC)
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        found = 0
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for messages in consumer.poll(timeout_ms=1000).values():
                lines = [line for m in messages for line in (m.value or b"").split(b"\n") if line.strip()]
                found += sum(decode_fact(line).kind == "postback" for line in lines)
        return found
    finally:
        consumer.close()


def users() -> Iterator[tuple[str, int, str, str]]:
    """(campaign, n, user, callback) of every acquired campaign user."""
    for campaign in ("cA", "cB"):
        for n in range(USERS):
            yield campaign, n, f"u{campaign}{n}", f"B.cb-{campaign}-{n}"


def test_monitor_clicks_to_postbacks_and_reports_untouched_by_rules(tmp_path: Path) -> None:
    prefix = f"e{uuid.uuid4().hex[:6]}."
    config = [
        kit.campaign(event_id="cmp-A", ts="2026-11-01T00:00:00+08:00", campaign_id="cA", platform="douyin"),
        kit.campaign(event_id="cmp-B", ts="2026-11-01T00:00:00+08:00", campaign_id="cB", platform="douyin"),
        kit.plan(event_id="plan-B", ts="2026-11-01T00:00:00+08:00", plan_id="pB"),
    ]
    rule = kit.line(type="postback_rule", event_id="rule-B", ts="2026-11-01T00:00:00+08:00", campaign_id="cB",
                    kinds=["activate", "every_pay"], send_ratio="0")  # fmt: skip
    queries: list[str] = []
    events: list[bytes] = []
    expected: set[tuple[str, str, str, int | None]] = set()  # (key, event_type, callback, pay_amount in fen)
    held: set[str] = set()
    for i, (campaign, n, user, callback) in enumerate(users()):
        click_id = f"OE{campaign}{n}"
        click_ts = f"{DAY}09:00:{i:02d}+08:00"
        queries.append(f"clickid={click_id}&promotion_id={campaign}&ts={_ms(click_ts)}&callback={callback}"
                       f"&oaid=oaid-{user}&idfa=&imei=__IMEI__")  # fmt: skip
        events.append(kit.redirect(event_id=f"r-{user}", ts=f"{DAY}09:00:{15 + i:02d}+08:00", user_id=user,
                                   click_id=click_id))  # fmt: skip
        expected.add((idempotency_key("oceanengine", callback, "activate", user), "active", callback, None))
        for j, amount in enumerate(PAYS):
            order = f"o-{user}-{j}"
            events.append(kit.pay(order, user, f"{DAY}09:00:{30 + i + j:02d}+08:00", amount))
            key = idempotency_key("oceanengine", callback, "pay", order)
            if campaign == "cA":
                expected.add((key, "active_pay", callback, int(Decimal(amount) * 100)))
            else:
                held.add(key)
    events += [  # a creator-clip user: commission, no postback
        kit.click(event_id="c-up1", ts=f"{DAY}09:00:40+08:00", device_id="dev-up1", plan_id="pB"),
        kit.redirect(event_id="r-up1", ts=f"{DAY}09:00:45+08:00", user_id="up1", device_id="dev-up1"),
    ]
    events.append(kit.pay("o-up1", "up1", f"{DAY}09:00:50+08:00", "30.00"))
    events.append(kit.payment(order_id="o-org", user_id="organic", ts=f"{DAY}09:00:55+08:00", amount="3.00"))
    clock = kit.redirect(event_id="clock", ts=f"{DAY}12:00:00+08:00", user_id="later")  # past every settle moment

    env = {"REELROI_POSTBACKS": "1", "REELROI_POSTBACK_SETTLE_S": str(SETTLE_S)}
    with EmbeddedBroker() as broker, Receivers() as rx:
        create_topics(broker.bootstrap, prefix, partitions=PARTITIONS)
        collector = Collector(tmp_path, broker.bootstrap, prefix)
        try:
            with (
                Pipeline(tmp_path, broker.bootstrap, prefix, env) as pipe,
                Sender(tmp_path, broker.bootstrap, prefix, rx.env()) as sender,
            ):
                pipe.start(workers=1)
                sender.start()
                collector.post([*config, rule])
                for query in queries:
                    collector.click("oceanengine", query)
                collector.post(events)
                # the monitor GETs are answered before their clicks are in Kafka (the collector buffers them)
                wanted = [f'"oceanengine:OE{c}{n}"'.encode() for c, n, *_ in users()]
                wait_for(lambda: all(any(w in line for line in input_lines(broker.bootstrap, prefix)) for w in wanted),
                         60, "the monitor clicks in Kafka")  # fmt: skip
                assert workers_drained(broker.bootstrap, prefix, 120), pipe.tail()
                assert decisions(broker.bootstrap, prefix) == 0, "decided before the clock passed the settle delay"
                collector.post([clock])
                keys = [k for k, *_ in expected]
                wait_for(lambda: all(rx.got(k) >= 1 for k in keys), 90, f"the postbacks\n{pipe.tail()}{sender.tail()}")
                wait_for(lambda: all(k in (d := ledger(broker.bootstrap, prefix)) and d[k].status == "sent"
                                     for k in keys), 30, "the ledger's sent facts")  # fmt: skip
                assert pipe.drained(120), pipe.tail()
                time.sleep(1.0)  # anything late would have reached the receiver by now
                sender.stop()
                pipe.stop()
        finally:
            collector.close()
        lines = input_lines(broker.bootstrap, prefix)
    assert "did not take" not in collector.log.read_text()

    assert rx.problems() == []
    got = {
        (
            r.key,
            r.body["event_type"],
            r.body["context"]["ad"]["callback"],
            r.body.get("properties", {}).get("pay_amount"),
        )
        for r in rx.requests()
    }
    assert got == expected
    assert len(rx.requests()) == len(expected)  # exactly once each
    assert all(r.platform == "oceanengine" for r in rx.requests())

    shown = subprocess.run(
        [*CLI, "postbacks", "--db", pipe.dsn, "--format", "json"], capture_output=True, cwd=tmp_path, check=False
    )
    assert shown.returncode == 0, shown.stderr.decode()
    rows = {r["key"]: r for r in json.loads(shown.stdout)}
    assert {k: r["status"] for k, r in rows.items()} == {
        **{k: "sent" for k, *_ in expected},
        **{k: "held_ratio" for k in held},
    }
    for key, kind, callback, _ in expected:
        assert (rows[key]["campaign_id"], rows[key]["platform"], rows[key]["callback"]) == (
            "cA" if "-cA-" in callback else "cB", "oceanengine", callback,
        )  # fmt: skip
        assert rows[key]["kind"] == ("activate" if kind == "active" else "pay")

    streamed = reports(pipe.dsn, tmp_path)
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    assert [line for line in lines if b'"rule-B"' in line] == [rule + b"\n"]
    with_rule = replayed_reports(lines, tmp_path / "with")
    without_rule = replayed_reports([line for line in lines if b'"rule-B"' not in line], tmp_path / "without")
    for name in ("roi", "commission"):
        assert streamed[name] == with_rule[name] == without_rule[name], name
    roi = {r["source_id"]: r for r in streamed["roi"] if r["source_id"] in ("cA", "cB")}  # type: ignore[attr-defined]
    assert {s: (r["new_users"], r["revenue_total"]) for s, r in roi.items()} == {
        "cA": (USERS, "55.02"), "cB": (USERS, "55.02"),
    }, streamed["roi"]  # fmt: skip
    assert streamed["commission"], "the creator plan's commission"
