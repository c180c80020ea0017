"""A real worker (subprocess) on the embedded broker converges to what replay gives."""

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
from streams.produce import create_topics, produce

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]


def reports(dsn: str, cwd: Path) -> dict[str, object]:
    out = {}
    for command in ("roi", "commission", "rejects"):
        done = subprocess.run([*CLI, command, "--db", dsn, "--format", "json"], cwd=cwd, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        out[command] = json.loads(done.stdout)
    return out


def replayed_reports(lines: list[bytes], tmp_path: Path) -> dict[str, object]:
    """The reports of ``reelroi replay`` over ``lines``: what a stream must converge to."""
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(lines))
    replay_dsn = f"chdb://{tmp_path / 'replay'}"
    done = subprocess.run([*CLI, "replay", str(source), "--db", replay_dsn], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return reports(replay_dsn, tmp_path)


def start_worker(dsn: str, bootstrap: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REELROI_KAFKA_BATCH_MAX": "2000",
        "REELROI_KAFKA_INTAKE_TRIM_S": "5",  # trims mid-stream too
        "REELROI_METRICS_PORT": "0",  # off: a worker of another test may hold the default port
    }
    return subprocess.Popen(
        [*CLI, "worker", "--db", dsn, "--bootstrap", bootstrap, "--topic-prefix", prefix],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    raise AssertionError("timed out")


@pytest.fixture
def lines() -> list[bytes]:
    rows = list(generate(GeneratorConfig(seed=11, days=2, events=12_000, duplicate_share=0.03, malformed_share=0.01)))
    random.Random(5).shuffle(rows)  # out of order across topics: late clicks, refunds before payments
    return rows


def test_stream_with_kill_9_restarts_equals_replay(tmp_path: Path, lines: list[bytes]) -> None:
    expected = replayed_reports(lines, tmp_path)

    stream_dir = tmp_path / "stream"
    stream_dsn = f"chdb://{stream_dir}"
    log = tmp_path / "worker.log"
    rnd = random.Random(3)
    chunks = [lines[i : i + len(lines) // 4] for i in range(0, len(lines), len(lines) // 4)]
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "s.", partitions=3)
        worker = start_worker(stream_dsn, broker.bootstrap, "s.", log)
        starts = 1
        for chunk in chunks:
            produce(broker.bootstrap, "s.", chunk)
            time.sleep(rnd.uniform(3.0, 8.0))  # somewhere in the middle of a batch, or between
            os.killpg(worker.pid, signal.SIGKILL)  # no goodbye: offsets, writes, all cut off
            worker.wait()
            worker = start_worker(stream_dsn, broker.bootstrap, "s.", log)
            starts += 1
        # the embedded ClickHouse is one process at a time: stop the worker to read,
        # and give it more time (a fresh restart, so another rebuild) until it has drained
        got: dict[str, object] = {}
        for _ in range(6):
            time.sleep(12)
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
            got = reports(stream_dsn, tmp_path)
            if got == expected:
                break
            worker = start_worker(stream_dsn, broker.bootstrap, "s.", log)
        assert starts >= 5
    assert got["rejects"] == expected["rejects"], log.read_text()[-2000:]
    assert got["roi"] == expected["roi"]
    assert got["commission"] == expected["commission"]
