"""``reelroi lag`` against the real broker and a real worker process, and its pure verdict."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.lag import LagReader, build_report
from streams.produce import Batching, Tally, create_topics, produce
from tests.streams.test_worker import CLI

pytestmark = pytest.mark.integration
ROW = re.compile(r"^(\S+)\s+(\d+)\s+([\d,]+)\s+([\d,]+|-)\s+([\d,]+)$")


def lag(bootstrap: str, prefix: str, *extra: str, timeout: float = 180) -> tuple[int, str, str]:
    done = subprocess.run(
        [*CLI, "lag", "--bootstrap", bootstrap, "--topic-prefix", prefix, "--db", "chdb:///nowhere", *extra],
        capture_output=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def start_worker(dsn: str, bootstrap: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REELROI_METRICS_PORT": "0"}  # no port shared with anything else running
    return subprocess.Popen(
        [*CLI, "worker", "--db", dsn, "--bootstrap", bootstrap, "--topic-prefix", prefix],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def rows(out: str) -> dict[tuple[str, int], tuple[int, int | None, int]]:
    """(topic, partition) -> (end, committed, lag) from the printed table."""
    found = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            committed = None if m[4] == "-" else int(m[4].replace(",", ""))
            found[(m[1], int(m[2]))] = (int(m[3].replace(",", "")), committed, int(m[5].replace(",", "")))
    return found


def test_lag_goes_to_zero_once_a_worker_has_drained(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=9, days=1, events=4_000)))
    tally = Tally()
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "w.", partitions=2)
        produce(broker.bootstrap, "w.", lines, tally=tally, batching=Batching(lines=200))
        code, out, _ = lag(broker.bootstrap, "w.")
        before = rows(out)
        assert code == 1 and len(before) == 12  # six family topics, two partitions each
        # every message counted, though Tansu's ListOffsets alone reads a record batch as one
        assert sum(end for end, _, _ in before.values()) == tally.messages
        assert all(committed is None and n == end for end, committed, n in before.values())

        worker = start_worker(f"chdb://{tmp_path / 'db'}", broker.bootstrap, "w.", tmp_path / "worker.log")
        try:
            started = time.monotonic()
            code, out, err = lag(broker.bootstrap, "w.", "--wait", "120")
            assert code == 0, (out, err, (tmp_path / "worker.log").read_text()[-2000:])
            assert time.monotonic() - started < 60
            after = rows(out)
            assert all(committed == end and n == 0 for end, committed, n in after.values()), out
            assert sum(end for end, _, _ in after.values()) == tally.messages
            assert "lag 0 (drained)" in out and "not known from outside" in out

            more = KafkaProducer(bootstrap_servers=broker.bootstrap)  # a single-event message, as outsiders send
            more.send("w.clicks", value=lines[0], partition=1).get(timeout=30)
            more.close()
            code, out, _ = lag(broker.bootstrap, "w.", "--wait", "60")
            assert code == 0 and rows(out)[("w.clicks", 1)] == (after[("w.clicks", 1)][0] + 1,) * 2 + (0,)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)


def test_lag_wait_times_out_with_no_worker() -> None:
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "n.", partitions=2)
        assert lag(broker.bootstrap, "n.")[0] == 0  # nothing produced: nothing to wait for
        produce(broker.bootstrap, "n.", list(generate(GeneratorConfig(seed=2, days=1, events=500))))
        started = time.monotonic()
        code, out, err = lag(broker.bootstrap, "n.", "--wait", "3")
        assert code == 1 and "not drained after 3s" in err
        assert 3 <= time.monotonic() - started < 20
        assert sum(n for _, _, n in rows(out).values()) > 0


def test_lag_with_an_unreachable_broker_is_one_line_and_status_2() -> None:
    code, _, err = lag("127.0.0.1:1", "x.", timeout=120)
    assert code == 2 and err.startswith("reelroi lag: error: cannot reach Kafka at 127.0.0.1:1")


def test_drained_needs_attribution_where_it_is_known() -> None:
    ends = {("t.clicks", 0): 10, ("t.money", 0): 4}
    committed = {("t.clicks", 0): 10, ("t.money", 0): 4}
    assert build_report("g", ends, committed, None, "").drained
    behind = build_report("g", ends, committed, {("t.clicks", 0): 10}, "")
    assert not behind.drained and behind.unattributed == 4  # t.money never attributed
    assert "not yet attributed 4" in behind.render()
    assert build_report("g", ends, committed, {("t.clicks", 0): 10, ("t.money", 0): 4}, "").drained
    assert not build_report("g", ends, {("t.clicks", 0): 10}, None, "").drained  # t.money never committed
    assert build_report("g", {}, {}, None, "").drained  # no topics: nothing produced


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
            assert reader.committed() == {}
        finally:
            reader.close()


def test_lag_help_names_its_env_vars() -> None:
    done = subprocess.run([sys.executable, "-m", "reelroi.cli", "lag", "--help"], capture_output=True)
    text = " ".join(done.stdout.decode().split())
    assert "REELROI_KAFKA_GROUP" in text and "REELROI_KAFKA_BOOTSTRAP" in text and "--wait" in text
