"""SIGTERM stops a worker promptly even while every ClickHouse write fails, and nothing is lost.

The worker's database directory is moved away under it and a file takes its
place (a disk that went away), so intake and attribution writes fail for real
and are retried. SIGTERM
must still end the process within seconds; with the directory back, a new
worker attributes everything and the reports equal a replay.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reelroi.generator import GeneratorConfig, generate
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from tests.streams.test_poison import stop
from tests.streams.test_worker import replayed_reports, reports, start_worker, wait_for

pytestmark = pytest.mark.integration


def test_sigterm_while_writes_fail(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=8, days=1, events=3_000)))
    expected = replayed_reports(lines, tmp_path)
    db, gone = tmp_path / "stream", tmp_path / "stream-gone"
    log = tmp_path / "worker.log"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "t.", partitions=2)
        worker = start_worker(f"chdb://{db}", broker.bootstrap, "t.", log)
        produce(broker.bootstrap, "t.", lines[:1500])
        time.sleep(10)
        db.rename(gone)  # the disk went away: a file in its place, so nothing can be written under it
        db.write_text("")
        produce(broker.bootstrap, "t.", lines[1500:])
        wait_for(lambda: log.read_text(errors="replace").count("write failed") >= 2, timeout=60)
        assert worker.poll() is None
        assert stop(worker) < 15, log.read_text()[-2000:]
        db.unlink()
        gone.rename(db)
        got: dict[str, object] = {}
        for _ in range(4):
            worker = start_worker(f"chdb://{db}", broker.bootstrap, "t.", log)
            time.sleep(15)
            stop(worker)
            got = reports(f"chdb://{db}", tmp_path)
            if got == expected:
                break
    assert got == expected
