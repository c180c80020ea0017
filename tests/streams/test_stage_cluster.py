"""Several worker processes and a sink on the real broker, killed at random, give the replay's reports.

Issue 10 point 7: three workers and a sink; workers joining and leaving under
load; kill -9 of a worker and of the sink at random moments, several times;
then the reports equal replay row for row. The workers share one checkpoint
directory (one machine); only the sink opens the embedded ClickHouse.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.lag import LagReader
from streams.produce import create_topics, produce
from streams.topics import all_topics, dead_letter_topic

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]
PREFIX = "c."
GROUP = "reelroi-attribution"


def reports(dsn: str, cwd: Path) -> dict[str, object]:
    out = {}
    for command in ("roi", "commission", "rejects"):
        done = subprocess.run([*CLI, command, "--db", dsn, "--format", "json"], cwd=cwd, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        out[command] = json.loads(done.stdout)
    return out


def replayed(lines: list[bytes], tmp_path: Path) -> dict[str, object]:
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(lines))
    dsn = f"chdb://{tmp_path / 'replay'}"
    done = subprocess.run([*CLI, "replay", str(source), "--db", dsn], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return reports(dsn, tmp_path)


class Cluster:
    def __init__(self, tmp_path: Path, bootstrap: str) -> None:
        self.tmp, self.bootstrap = tmp_path, bootstrap
        self.log = (tmp_path / "cluster.log").open("ab")
        self.env = {**os.environ, "REELROI_METRICS_PORT": "0", "REELROI_STAGE_CHECKPOINT_S": "1",
                    "REELROI_KAFKA_BATCH_MAX": "500", "REELROI_LOG_LEVEL": "WARN"}  # fmt: skip
        self.dsn = f"chdb://{tmp_path / 'stream'}"

    def worker(self) -> subprocess.Popen[bytes]:
        argv = [*CLI, "worker", "--bootstrap", self.bootstrap, "--topic-prefix", PREFIX,
                "--state-dir", str(self.tmp / "state")]  # fmt: skip
        return subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def sink(self) -> subprocess.Popen[bytes]:
        argv = [*CLI, "sink", "--db", self.dsn, "--bootstrap", self.bootstrap, "--topic-prefix", PREFIX,
                "--metrics-port", "0"]  # fmt: skip
        return subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    os.killpg(process.pid, sig)
    process.wait(timeout=60)


def drained(bootstrap: str, timeout: float) -> bool:
    """Every partition of every topic committed to its end by its group, in two looks in a row."""
    readers = {
        GROUP: LagReader(bootstrap, PREFIX, GROUP),
        GROUP + "-sink": LagReader(bootstrap, PREFIX, GROUP + "-sink"),
    }
    internal = [t for t in all_topics(PREFIX) if t not in (dead_letter_topic(PREFIX), PREFIX + "facts")]
    readers[GROUP].topics = internal
    readers[GROUP + "-sink"].topics = [PREFIX + "facts"]
    try:
        deadline, previous = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            looks = {g: (r.ends(), r.committed()) for g, r in readers.items()}
            done = all(committed.get(tp, 0) >= end for ends, committed in looks.values() for tp, end in ends.items())
            ends = {g: look[0] for g, look in looks.items()}
            if done and previous == ends:
                return True
            previous = ends if done else None
            time.sleep(2.0)
        return False
    finally:
        for reader in readers.values():
            reader.close()


def test_workers_and_sink_killed_at_random_equal_replay(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=23, days=3, events=20_000, duplicate_share=0.03, malformed_share=0.01)))
    random.Random(9).shuffle(lines)  # late clicks, refunds before payments, rates after the money
    expected = replayed(lines, tmp_path)
    rnd = random.Random(4)
    chunks = [lines[i : i + len(lines) // 5] for i in range(0, len(lines), len(lines) // 5)]
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, PREFIX, partitions=4)
        cluster = Cluster(tmp_path, broker.bootstrap)
        sink = cluster.sink()
        workers = [cluster.worker() for _ in range(3)]
        for i, chunk in enumerate(chunks):
            produce(broker.bootstrap, PREFIX, chunk)
            time.sleep(rnd.uniform(2.0, 6.0))  # mid-batch, mid-checkpoint, mid-rebalance
            victim = rnd.randrange(len(workers))
            kill(workers[victim])  # kill -9: no goodbye, no checkpoint, no commit
            workers[victim] = cluster.worker()
            if i == 1:
                kill(sink)
                sink = cluster.sink()
            if i == 2:
                workers.append(cluster.worker())  # one joins under load
            if i == 3:
                kill(workers.pop(0), signal.SIGTERM)  # and one leaves
        assert drained(broker.bootstrap, 240), (tmp_path / "cluster.log").read_text()[-3000:]
        for w in workers:
            kill(w, signal.SIGTERM)
        kill(sink, signal.SIGTERM)
    got = reports(cluster.dsn, tmp_path)
    assert got["rejects"] == expected["rejects"], (tmp_path / "cluster.log").read_text()[-3000:]
    assert got["roi"] == expected["roi"]
    assert got["commission"] == expected["commission"]
