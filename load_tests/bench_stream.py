"""Streaming benchmark: a worker draining pre-loaded topics, the transport ceiling, and freshness.

    .venv/bin/python load_tests/bench_stream.py --events 1000000

1. Pre-loads the same events twice into the family topics of an embedded
   broker: as batches (``reelroi produce``'s default, up to 1,000 lines per
   message) and one event per message, as outside producers send (timed
   separately: that is the producer, not the worker).
2. A plain aiokafka consumer reads each set of topics: the transport ceiling
   (events are lines; it does not parse them).
3. faust's own ceiling: an agent that only takes and acks
   (``load_tests/faust_noop.py``), over the single-event topics.
4. ``reelroi worker`` drains each set into a fresh embedded ClickHouse
   (intake and attribution both in this one worker, as on a single machine):
   events/s from the moment it holds its partitions (its /metrics first shows
   intake or leadership) to its last attribution write, and its peak RSS. For
   single events the worker's own figure (first attribution batch to last
   write, as earlier releases measured) is printed too.
5. Freshness: a fresh worker and database, events produced in batches at a
   steady rate (default 5,000/s); p50/p99 of (written to ClickHouse - Kafka
   timestamp).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402

from reelroi.generator import GeneratorConfig, generate  # noqa: E402
from streams.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.produce import SINGLE, Batching, Tally, create_topics, produce  # noqa: E402
from streams.topics import FAMILIES, topic_name  # noqa: E402


async def ceiling(bootstrap: str, prefix: str, expected: int) -> float:
    """Events/s a plain aiokafka consumer reads (lines counted, not parsed), every partition assigned:
    no group join, so the clock measures fetching only."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    got = 0
    try:
        partitions = [
            TopicPartition(t, p)
            for t in (topic_name(prefix, f.name) for f in FAMILIES)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        while got < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            got += sum((m.value or b"").count(b"\n") + 1 for v in batch.values() for m in v)
    finally:
        await consumer.stop()
    return got / (time.perf_counter() - started)


def run_worker(
    bootstrap: str, prefix: str, work: Path, name: str, idle_s: float, metrics_port: int = 0
) -> tuple[subprocess.Popen[bytes], Path]:
    stats = work / f"{name}.json"
    env = {
        **os.environ,
        "REELROI_KAFKA_EXIT_WHEN_IDLE_S": str(idle_s),
        "REELROI_KAFKA_STATS_PATH": str(stats),
        "REELROI_METRICS_PORT": str(metrics_port),  # 0: off
    }
    cmd = [sys.executable, "-m", "reelroi.cli", "worker", "--db", f"chdb://{work / name}"]
    cmd += ["--bootstrap", bootstrap, "--topic-prefix", prefix]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=(work / f"{name}.log").open("wb")), stats


def _scrape(port: int) -> tuple[bool, float]:
    """From the worker's /metrics: whether it is at work (records taken, or leading), and its last batch's time."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as answer:
            text = answer.read().decode()
    except OSError:
        return False, 0.0
    holding, last = False, 0.0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == "reelroi_attribution_leader" or name.startswith("reelroi_events_consumed_total{"):
            holding = holding or float(value) > 0
        elif name == "reelroi_last_batch_timestamp_seconds":
            last = float(value)
    return holding, last


def drain(bootstrap: str, prefix: str, work: Path, name: str, events: int) -> dict[str, float]:
    """One worker draining ``prefix``'s topics: its stats, and events/s from holding to the last write."""
    port = free_port()
    worker, stats_path = run_worker(bootstrap, prefix, work, name, idle_s=8, metrics_port=port)
    seen = {"held": 0.0, "last": 0.0}

    def watch() -> None:
        while worker.poll() is None:
            holding, last = _scrape(port)
            if holding and not seen["held"]:
                seen["held"] = time.time()
            seen["last"] = max(seen["last"], last)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    worker.wait()
    watcher.join()
    stats: dict[str, float] = json.loads(stats_path.read_text())
    seconds = seen["last"] - seen["held"] if seen["held"] and seen["last"] else 0.0
    stats["held_seconds"] = seconds
    stats["held_events_per_s"] = events / seconds if seconds > 0 else 0.0
    return stats


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
        sent = {}
        for prefix, batching, what in (("b.", Batching(), "batches"), ("s.", SINGLE, "one event per message")):
            create_topics(broker.bootstrap, prefix, partitions=6)
            tally = Tally()
            t = time.perf_counter()
            produce(broker.bootstrap, prefix, lines, tally=tally, batching=batching)
            rate = tally.total_sent / (time.perf_counter() - t)
            sent[prefix] = tally.total_sent
            print(f"pre-loaded {what}: {rate:,.0f} events/s in {tally.messages:,} messages (kafka-python producer)")

        ceilings = {p: asyncio.run(ceiling(broker.bootstrap, p, sent[p])) for p in ("b.", "s.")}
        print(f"aiokafka ceiling  {ceilings['b.']:,.0f} events/s batched, {ceilings['s.']:,.0f} one per message")

        noop = subprocess.run(
            [sys.executable, str(ROOT / "load_tests" / "faust_noop.py"), "worker", "-l", "warn"],
            env={**os.environ, "BENCH_BOOTSTRAP": broker.bootstrap, "BENCH_PREFIX": "s.", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=900,
        )
        found = [ln for ln in (noop.stdout + noop.stderr).decode().splitlines() if "RESULT" in ln]
        faust_floor = float(found[-1].split()[-1]) if found else 0.0
        print(f"faust no-op agent {faust_floor:,.0f} events/s one per message (take + ack only)")

        runs = {p: drain(broker.bootstrap, p, work, f"drain-{p.rstrip('.')}", sent[p]) for p in ("b.", "s.")}
        for prefix, what in (("b.", "batches"), ("s.", "one per message")):
            d = runs[prefix]
            print(
                f"worker drain, {what}: {d['held_events_per_s']:,.0f} events/s ({sent[prefix]:,} in"
                f" {d['held_seconds']:.1f} s from holding its partitions to the last write, {d['batches']} attribution"
                f" batches), peak RSS {d['peak_rss_mb']:,.0f} MB"
            )
        single = runs["s."]
        print(
            f"  one per message, the worker's own span (first to last attribution batch): {single['events_per_s']:,.0f}/s"
        )
        batched_rate, single_rate = runs["b."]["held_events_per_s"], single["held_events_per_s"]
        print(f"ratio batched     {batched_rate / ceilings['b.']:.3f} of the aiokafka ceiling over batches")
        print(f"ratio single      {single_rate / ceilings['s.']:.3f} of the aiokafka ceiling over single events")
        if faust_floor:
            print(f"ratio single      {single_rate / faust_floor:.2f} of faust's no-op ceiling")
        print(f"batched / single  {batched_rate / single_rate:.1f}x" if single_rate else "")

        # freshness at a steady rate, on fresh topics and a fresh database
        create_topics(broker.bootstrap, "f.", partitions=6)
        worker, stats_path = run_worker(broker.bootstrap, "f.", work, "fresh", idle_s=6)
        time.sleep(8)  # let it join and rebuild before the clock starts
        steady = lines[: args.rate * args.fresh_seconds]
        start = time.perf_counter()
        for second in range(args.fresh_seconds):
            produce(broker.bootstrap, "f.", steady[second * args.rate : (second + 1) * args.rate], batching=Batching())
            time.sleep(max(0.0, start + second + 1 - time.perf_counter()))
        worker.wait()
        fresh = json.loads(stats_path.read_text())
        print(
            f"freshness at {args.rate:,}/s  p50 {fresh['freshness_p50_s']:.2f} s, p99 {fresh['freshness_p99_s']:.2f} s"
            f" (batched; Kafka timestamp -> written to ClickHouse)"
        )


if __name__ == "__main__":
    main()
