"""``reelroi sink`` as a process on the embedded broker: every fact written once, through a kill -9.

Fact lines go to the facts topic in batches (several versions of each key,
retractions, money that moves between users, blank lines and one line that
is not a fact, spread over the partitions in any order). The sink is killed
with SIGKILL while facts are still arriving, restarted, and stopped with
SIGTERM once its group has committed everything; only then is the database
read (the embedded ClickHouse opens a directory in one process at a time),
and it must hold, per key, exactly the fact of the greatest version.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from attribution.outputs import LoggedEvent, MoneyFact, UserFact
from attribution.stages.facts import Fact, encode, key_of
from streams.broker import EmbeddedBroker
from streams.produce import create_topics
from streams.sink_stage import facts_topic

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]
PARTITIONS = 3
DAY = dt.date(2026, 11, 2)

READ = """
import pickle, sys
from sinks.connection import connect
client = connect(sys.argv[1])
out = {}
for name, sql in {
    "events": "SELECT event_id, type, toUnixTimestamp64Micro(ts), origin, raw, version FROM reelroi.events FINAL",
    "users": "SELECT user_id, source_id, cohort_date, version FROM reelroi.users FINAL",
    "money": "SELECT user_id, event_id, value, version FROM reelroi.money FINAL",
}.items():
    out[name] = sorted(client.query(sql, column_formats={"raw": "bytes"}).result_rows)
sys.stdout.buffer.write(pickle.dumps(out))
"""


def facts(rnd: random.Random) -> list[Fact]:
    """Many versions per key; the greatest of a retracted key is a retraction. Versions are unique per key."""
    out: list[Fact] = []
    for i in range(1500):
        raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))  # not UTF-8, mostly
        out.append(Fact("event", i, LoggedEvent(f"e{i}", "click", i * 1000 - 5, f"t:{i % 3}:{i}", raw)))
    for u in range(600):
        versions = rnd.sample(range(10_000), rnd.randint(1, 4))
        for n, v in enumerate(sorted(versions)):
            retract = n == len(versions) - 1 and u % 7 == 0
            row = UserFact(f"u{u}", "campaign", f"c{v}", "click_id", DAY + dt.timedelta(days=v % 9), v, not retract)
            out.append(Fact("user", v, row))
    for p in range(800):  # a payment counted for one user, then moved to another: two keys, two producers
        first, second = f"u{p % 50}", f"u{50 + p % 50}"
        value = Decimal(f"{p}.{p % 10000:04d}")
        out.append(Fact("money", 100 + p, money(first, f"p{p}", value)))
        if p % 3 == 0:
            out.append(Fact("money", 5_000 + p, money(first, f"p{p}", value, active=False)))
            out.append(Fact("money", 7 + p, money(second, f"p{p}", value * 2)))
    rnd.shuffle(out)
    return out


def money(user_id: str, event_id: str, value: Decimal, active: bool = True) -> MoneyFact:
    return MoneyFact(
        event_id, "payment", user_id, "o", 0, DAY, "campaign", "cA", DAY, "CNY", value, Decimal(1), value, "",
        Decimal(0), active,
    )  # fmt: skip


def expected(all_facts: list[Fact]) -> dict[str, list[tuple[Any, ...]]]:
    best: dict[tuple[str, tuple[Any, ...]], Fact] = {}
    for f in all_facts:
        key = (f.kind, key_of(f))
        if key not in best or f.version > best[key].version:
            best[key] = f
    out: dict[str, list[tuple[Any, ...]]] = {"events": [], "users": [], "money": []}
    for f in best.values():
        r = f.row
        if f.kind == "event":
            out["events"].append((r.event_id, r.type, r.ts_us, r.origin, r.raw, f.version))
        elif f.kind == "user" and r.active:
            out["users"].append((r.user_id, r.source_id, r.cohort_date, f.version))
        elif f.kind == "money" and r.active:
            out["money"].append((r.user_id, r.event_id, r.value, f.version))
    return {name: sorted(rows) for name, rows in out.items()}


def messages(all_facts: list[Fact], rnd: random.Random) -> list[bytes]:
    """Batches of 1 to 120 lines, with a blank line now and then."""
    out, i = [], 0
    while i < len(all_facts):
        n = rnd.randint(1, 120)
        lines = [encode(f) for f in all_facts[i : i + n]]
        if rnd.random() < 0.2:
            lines.insert(rnd.randrange(len(lines) + 1), b"  \r")
        out.append(b"\n".join(lines) + b"\n")
        i += n
    return out


def start_sink(dsn: str, bootstrap: str, prefix: str, group: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REELROI_KAFKA_GROUP": group,
        "REELROI_KAFKA_PARTITIONS": str(PARTITIONS),
        "REELROI_SINK_BATCH_MESSAGES": "25",  # many small batches: a kill lands between acks
        "REELROI_SINK_BATCH_WITHIN_S": "0.2",
    }
    return subprocess.Popen(
        [*CLI, "sink", "--db", dsn, "--bootstrap", bootstrap, "--topic-prefix", prefix, "--metrics-port", "0"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


class Producer:
    """Sends each message to a random partition and remembers the end offset of each."""

    def __init__(self, bootstrap: str, topic: str, rnd: random.Random) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.topic, self.rnd = topic, rnd
        self.ends: dict[int, int] = {}

    def send(self, values: list[bytes], pause: float = 0.0) -> None:
        futures = []
        for value in values:
            futures.append(self.producer.send(self.topic, value=value, partition=self.rnd.randrange(PARTITIONS)))
            if pause:
                time.sleep(pause)
        self.producer.flush()
        for future in futures:
            meta = future.get(timeout=30)
            self.ends[meta.partition] = max(self.ends.get(meta.partition, 0), meta.offset + 1)


def committed(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    """The sink's committed offsets: its group is ``<REELROI_KAFKA_GROUP>-sink``."""
    offsets = admin.list_group_offsets({f"{group}-sink": None}).get(f"{group}-sink", {})
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def wait_until(predicate: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text(errors='replace')[-3000:]}")


def test_sink_writes_every_fact_once_through_a_kill_9(tmp_path: Path) -> None:
    rnd = random.Random(7)
    all_facts = facts(rnd)
    values = messages(all_facts, rnd)
    values.insert(len(values) // 3, encode(all_facts[0]) + b"\nnot a fact\n")  # one bad line, among good ones
    half = len(values) // 2
    prefix, group = f"k{uuid.uuid4().hex[:8]}.", f"g-{uuid.uuid4().hex[:8]}"
    dsn = f"chdb://{tmp_path / 'db'}"
    log = tmp_path / "sink.log"
    with EmbeddedBroker() as broker:
        topic = facts_topic(prefix)
        create_topics(broker.bootstrap, prefix, PARTITIONS)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        producer = Producer(broker.bootstrap, topic, rnd)
        producer.send(values[:half])
        sink = start_sink(dsn, broker.bootstrap, prefix, group, log)
        wait_until(lambda: sum(committed(admin, group, topic).values()) > 0, 40, "a first commit", log)
        # the second half arrives while the sink runs, and the sink dies in the middle of it
        sending = threading.Thread(target=producer.send, args=(values[half:], 0.005))
        sending.start()
        time.sleep(0.5)
        os.killpg(sink.pid, signal.SIGKILL)
        sink.wait()
        at_kill = committed(admin, group, topic)
        sending.join()
        assert sum(at_kill.values()) < sum(producer.ends.values())  # it died with work left

        sink = start_sink(dsn, broker.bootstrap, prefix, group, log)
        wait_until(lambda: committed(admin, group, topic) == producer.ends, 60, "every message committed", log)
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]
        admin.close()
        producer.producer.close()

    read = subprocess.run([sys.executable, "-c", READ, dsn], capture_output=True, cwd=Path(__file__).parents[2])
    assert read.returncode == 0, read.stderr.decode()
    got = pickle.loads(read.stdout)
    want = expected(all_facts)
    for table in want:
        assert got[table] == want[table], table
    text = log.read_text(errors="replace")
    assert text.count("bad fact at") == 1 and f"{topic}:" in text and "not a fact" in text, text[-3000:]
