"""Streaming benchmark: a worker draining pre-loaded topics, the transport ceiling, and freshness.

    .venv/bin/python load_tests/bench_stream.py --events 1000000

1. Pre-loads the events into the family topics of an embedded broker (timed
   separately: that is the producer, not the worker).
2. A plain aiokafka consumer reads the same topics: the transport ceiling.
3. ``reelroi worker`` drains them into a fresh embedded ClickHouse: events/s
   attributed, from its first attribution batch to its last write (intake and
   attribution both run in this one worker, as on a single machine), and its
   peak RSS.
4. Freshness: a fresh worker and database, events produced at a steady rate
   (default 5,000/s); p50/p99 of (written to ClickHouse - Kafka timestamp).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from reelroi.generator import GeneratorConfig, generate  # noqa: E402
from streams.broker import EmbeddedBroker  # noqa: E402
from streams.produce import create_topics, produce  # noqa: E402
from streams.topics import FAMILIES, topic_name  # noqa: E402


async def ceiling(bootstrap: str, prefix: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        *[topic_name(prefix, f.name) for f in FAMILIES],
        bootstrap_servers=bootstrap,
        group_id="bench-ceiling",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    got, started = 0, None
    try:
        while got < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            n = sum(len(v) for v in batch.values())
            if n and started is None:
                started = time.perf_counter()
            got += n
    finally:
        await consumer.stop()
    return got / (time.perf_counter() - (started or time.perf_counter()))


def run_worker(bootstrap: str, prefix: str, work: Path, name: str, idle_s: float) -> dict[str, float]:
    stats = work / f"{name}.json"
    env = {
        **os.environ,
        "REELROI_KAFKA_EXIT_WHEN_IDLE_S": str(idle_s),
        "REELROI_KAFKA_STATS_PATH": str(stats),
        "REELROI_METRICS_PORT": "0",  # one worker after another; no port to collide on
    }
    cmd = [sys.executable, "-m", "reelroi.cli", "worker", "--db", f"chdb://{work / name}"]
    cmd += ["--bootstrap", bootstrap, "--topic-prefix", prefix]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=(work / f"{name}.log").open("wb")), stats  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=5_000, help="events/s for the freshness run")
    parser.add_argument("--fresh-seconds", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reelroi-stream-bench-"))
    lines = list(generate(GeneratorConfig(seed=7, days=3, events=args.events)))
    print(f"generated {len(lines):,} events")
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "b.", partitions=6)
        t = time.perf_counter()
        produce(broker.bootstrap, "b.", lines)
        print(f"pre-loaded        {len(lines) / (time.perf_counter() - t):,.0f} events/s (kafka-python producer)")

        transport = asyncio.run(ceiling(broker.bootstrap, "b.", len(lines)))
        print(f"aiokafka ceiling  {transport:,.0f} events/s")

        noop = subprocess.run(
            [sys.executable, str(ROOT / "load_tests" / "faust_noop.py"), "worker", "-l", "warn"],
            env={**os.environ, "BENCH_BOOTSTRAP": broker.bootstrap, "BENCH_PREFIX": "b.", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=900,
        )
        found = [ln for ln in (noop.stdout + noop.stderr).decode().splitlines() if "RESULT" in ln]
        faust_floor = float(found[-1].split()[-1]) if found else 0.0
        print(f"faust no-op agent {faust_floor:,.0f} events/s (take + ack only)")

        worker, stats_path = run_worker(broker.bootstrap, "b.", work, "drain", idle_s=8)
        worker.wait()
        drain = json.loads(stats_path.read_text())
        print(
            f"worker drain      {drain['events_per_s']:,.0f} events/s ({drain['events']:,} in {drain['seconds']:.1f} s,"
            f" {drain['batches']} batches), peak RSS {drain['peak_rss_mb']:,.0f} MB"
        )
        print(f"ratio             {drain['events_per_s'] / transport:.2f} of the transport ceiling")

        # freshness at a steady rate, on fresh topics and a fresh database
        create_topics(broker.bootstrap, "f.", partitions=6)
        worker, stats_path = run_worker(broker.bootstrap, "f.", work, "fresh", idle_s=6)
        time.sleep(8)  # let it join and rebuild before the clock starts
        steady = lines[: args.rate * args.fresh_seconds]
        start = time.perf_counter()
        for second in range(args.fresh_seconds):
            produce(broker.bootstrap, "f.", steady[second * args.rate : (second + 1) * args.rate])
            time.sleep(max(0.0, start + second + 1 - time.perf_counter()))
        worker.wait()
        fresh = json.loads(stats_path.read_text())
        print(
            f"freshness at {args.rate:,}/s  p50 {fresh['freshness_p50_s']:.2f} s, p99 {fresh['freshness_p99_s']:.2f} s"
            f" (Kafka timestamp -> written to ClickHouse)"
        )


if __name__ == "__main__":
    main()
