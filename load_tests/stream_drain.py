"""Draining pre-loaded topics with reelroi workers and a sink, and the ceilings beside it (bench_stream.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from stream_cluster import Cluster, OtherLoad, Watch, cpu_seconds, disk_bytes, labelled, table_counts, total

from streams.broker import EmbeddedBroker
from streams.lag import LagReader, wait_drained
from streams.produce import Batching, Tally, create_topics, produce
from streams.topics import FAMILIES, topic_name

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
GROUP = "reelroi-attribution"
PARTITIONS = 6
QUIET_S = 6.0  # drained: no counter moved for this long (then the lag is checked)


def inputs(prefix: str) -> list[str]:
    return [topic_name(prefix, f.name) for f in FAMILIES]


# ---------------------------------------------------------------- ceilings


async def ceiling(bootstrap: str, prefix: str, expected: int) -> float:
    """Events/s a plain aiokafka consumer reads (lines counted, not parsed), every partition assigned:
    no group join, so the clock measures fetching only."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    got = 0
    try:
        partitions = [
            TopicPartition(t, p) for t in inputs(prefix) for p in sorted(consumer.partitions_for_topic(t) or ())
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


def faust_noop(bootstrap: str, prefix: str) -> float:
    noop = subprocess.run(
        [sys.executable, str(HERE / "faust_noop.py"), "worker", "-l", "warn"],
        env={**os.environ, "BENCH_BOOTSTRAP": bootstrap, "BENCH_PREFIX": prefix, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=1800,
    )
    found = [ln for ln in (noop.stdout + noop.stderr).decode().splitlines() if "RESULT" in ln]
    return float(found[-1].split()[-1]) if found else 0.0


async def copy_inputs(bootstrap: str, source: str, target: str, messages: int) -> int:
    """Copy the ``messages`` messages of ``source``'s input topics to ``target``'s, same partition, same bytes.

    Counted, not compared with end offsets: Tansu lists a partition's end as its last record batch's base
    offset plus one (streams/lag.py)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, max_partition_fetch_bytes=8 * 1024 * 1024)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 * 1024 * 1024, linger_ms=5)
    await consumer.start()
    await producer.start()
    copied = 0
    try:
        parts = [TopicPartition(t, p) for t in inputs(source) for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + 600
        while copied < messages and time.monotonic() < deadline:
            pending = []
            for tp, batch in (await consumer.getmany(timeout_ms=1000, max_records=2000)).items():
                to = target + tp.topic.removeprefix(source)
                for m in batch:
                    pending.append(await producer.send(to, m.value, partition=tp.partition))
            await asyncio.gather(*pending)
            copied += len(pending)
    finally:
        await producer.stop()
        await consumer.stop()
    return copied


def preload(bootstrap: str, prefix: str, lines: list[bytes], batching: Batching) -> tuple[int, int, float]:
    """(events sent, messages, producer events/s)."""
    create_topics(bootstrap, prefix, PARTITIONS)
    tally = Tally()
    started = time.perf_counter()
    produce(bootstrap, prefix, lines, tally=tally, batching=batching)
    return tally.total_sent, tally.messages, tally.total_sent / (time.perf_counter() - started)


# ---------------------------------------------------------------- one drain


@dataclass
class Drain:
    events: int
    workers: int
    launched: float  # processes started
    started: float  # both groups stable: the copy of the input messages began
    copied: float  # every input message copied in
    first_routed: float
    worker_last: float
    sink_first: float
    sink_last: float
    drained: bool
    cpu: dict[str, float]  # CPU seconds per process from ``started`` on
    rss_mb: dict[str, float]
    stage_seconds: dict[str, float]  # batch seconds (wall) per stage, all workers
    sink_write_s: float
    facts: float
    counts: dict[str, int]
    state_bytes: int
    others_cpu_s: float  # CPU the rest of the machine used meanwhile
    profile: Path | None = None

    @property
    def rate(self) -> float:
        """Events/s from the moment the input began to arrive to the sink's last write."""
        return self.events / max(1e-9, self.sink_last - self.started)

    @property
    def worker_rate(self) -> float:
        """Events/s of the workers alone: from the input's arrival to their last record."""
        return self.events / max(1e-9, self.worker_last - self.started)

    @property
    def worker_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith("worker"))

    @property
    def cpu_bound(self) -> float:
        """Events/s if every core of the machine ran only this pipeline at the CPU it used per event."""
        return (os.cpu_count() or 1) * self.events / max(1e-9, sum(self.cpu.values()))

    @property
    def sink_span(self) -> float:
        return self.sink_last - self.sink_first


def wait_quiet(watch: Watch, routed_at_least: int, timeout: float) -> None:
    """Until every worker routed ``routed_at_least`` records and no counter moved for ``QUIET_S``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(1.0)
        last = [watch.last_change(c) for c in ("reelroi_router_records_total", "reelroi_stage_messages_total",
                                               "reelroi_sink_facts_total")]  # fmt: skip
        moved = max((t for t in last if t is not None), default=None)
        routed = watch.latest("reelroi_router_records_total")
        if routed >= routed_at_least and moved is not None and time.time() - moved > QUIET_S:
            return
    print(f"  (not quiet after {timeout:.0f} s: routed {watch.latest('reelroi_router_records_total'):,.0f})")


def until_drained(watch: Watch, bootstrap: str, prefix: str, events: int, timeout: float, sink: bool = True) -> bool:
    """Quiet, then both groups' lag 0 (or the workers' alone); a pause longer than ``QUIET_S`` (a big batch's
    delivery and checkpoint) only means waiting for quiet again."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        wait_quiet(watch, events, timeout=max(1.0, deadline - time.time()))
        if group_drained(bootstrap, prefix, 20, sink):
            return True
    return False


def group_drained(bootstrap: str, prefix: str, wait_s: float, sink: bool = True) -> bool:
    reader = LagReader(bootstrap, prefix, GROUP)
    try:
        if sink:
            drained: bool = wait_drained(reader.scan, wait_s)[1]
            return drained
        deadline, previous = time.monotonic() + wait_s, None  # the workers' group only
        while time.monotonic() < deadline:
            report = reader.scan()
            lag = report.group_totals().get(GROUP, 1)
            if lag == 0 and previous == report.ends:
                return True
            previous = report.ends if lag == 0 else None
            time.sleep(0.5)
        return False
    finally:
        reader.close()


async def _group_state(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = (await admin.describe_consumer_groups([group]))[0].groups[0]
        return str(described[2]), len(described[5])  # (error code, group id, state, protocol type, protocol, members)
    finally:
        await admin.close()


def wait_stable(bootstrap: str, members: dict[str, int], timeout: float = 180.0) -> float:
    """Until every group is Stable with its number of members; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(asyncio.run(_group_state(bootstrap, g)) == ("Stable", n) for g, n in members.items()):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"groups not stable within {timeout:.0f}s: {members}")


def drain(
    broker: EmbeddedBroker,
    source: str,
    prefix: str,
    messages: int,
    events: int,
    work: Path,
    workers: int = 1,
    sampled: bool = False,
) -> Drain:
    """``workers`` workers and the sink on ``prefix``'s empty topics; once both groups are stable, the ``messages``
    pre-loaded under ``source`` are copied in, and the clock runs from then until everything is written."""
    bootstrap = broker.bootstrap
    create_topics(bootstrap, prefix, PARTITIONS)
    cluster = Cluster(bootstrap, prefix, work)
    load, launched = OtherLoad(broker.pid), time.time()
    dsn = f"chdb://{work / 'db'}"
    sink = cluster.sink("sink", dsn)
    profile = work / "worker-0.samples.json" if sampled else None
    procs = [cluster.worker(f"worker-{i}", sampled=profile if i == 0 else None) for i in range(workers)]
    watch = Watch([sink, *procs]).start()
    names = [p.name for p in procs]
    try:
        wait_stable(bootstrap, {GROUP: workers, GROUP + "-sink": 1})
        started = time.time()
        cpu0 = {p.name: cpu_seconds(p.popen.pid) for p in cluster.procs}  # start-up and group join left out
        cluster.sampling_starts.touch()
        asyncio.run(copy_inputs(bootstrap, source, prefix, messages))
        copied = time.time()
        drained = until_drained(watch, bootstrap, prefix, events, timeout=3600)
        metrics = {p.name: p.metrics() for p in cluster.procs}
        rss = {p.name: p.peak_rss_mb() for p in cluster.procs}
        others = load.seconds(sum(cpu_seconds(p.popen.pid) for p in cluster.procs))
    finally:
        watch.stop()
        cluster.stop()
    stage_seconds: dict[str, float] = {}
    for name in names:
        for labels, value in labelled(metrics[name], "reelroi_stage_batch_seconds_sum"):
            stage_seconds[labels["stage"]] = stage_seconds.get(labels["stage"], 0.0) + value
    return Drain(
        events=events,
        workers=workers,
        launched=launched,
        started=started,
        copied=copied,
        first_routed=watch.first_above("reelroi_router_records_total", names) or started,
        worker_last=max(
            watch.last_change("reelroi_router_records_total", names) or 0.0,
            watch.last_change("reelroi_stage_messages_total", names) or 0.0,
        ),
        sink_first=watch.first_above("reelroi_sink_facts_total", ["sink"]) or started,
        sink_last=watch.last_change("reelroi_sink_facts_total", ["sink"]) or started,
        drained=drained,
        cpu={p.name: p.cpu_at_exit - cpu0[p.name] for p in cluster.procs},
        rss_mb=rss,
        stage_seconds=stage_seconds,
        sink_write_s=total(metrics["sink"], "reelroi_sink_write_seconds_sum"),
        facts=total(metrics["sink"], "reelroi_sink_facts_total"),
        counts=table_counts(dsn),
        state_bytes=disk_bytes(cluster.state),
        others_cpu_s=others,
        profile=profile,
    )


# ---------------------------------------------------------------- report


def where_time_goes(path: Path | None, top: int = 16) -> list[str]:
    """The sampled worker's busy samples, all threads together: seconds per source file and per function (self)."""
    if path is None or not path.exists():
        return ["  (no samples)"]
    threads = orjson.loads(path.read_bytes())
    interval = next(iter(threads.values()))["interval_s"] if threads else 0.005
    functions: dict[str, float] = {}
    ours: dict[str, float] = {}  # our code, inclusive: the steps (apply, save, route, encode, ...)
    for s in threads.values():
        for label, n in s["self"].items():
            functions[label] = functions.get(label, 0.0) + n * interval
        for label, n in s["inclusive"].items():
            if any(f"({package}/" in label for package in ("streams", "attribution", "schemas", "sinks")):
                ours[label] = ours.get(label, 0.0) + n * interval
    files: dict[str, float] = {}
    for label, seconds in functions.items():
        where = label.rsplit("(", 1)[-1].rsplit(":", 1)[0]
        files[where] = files.get(where, 0.0) + seconds
    busy = sum(functions.values())
    per_thread = ", ".join(
        f"{t} {(s['samples'] - s['idle']) * interval:.1f} s" for t, s in threads.items() if s["samples"] > s["idle"]
    )
    out = [f"  busy samples: {busy:.1f} s in all ({per_thread})"]
    out.append("  by file (self time):")
    out += [f"    {sec:6.2f} s {sec / busy:6.1%}  {f}" for f, sec in sorted(files.items(), key=lambda kv: -kv[1])[:top]]
    out.append("  reelroi functions, inclusive (time on the stack):")
    out += [f"    {sec:6.2f} s {sec / busy:6.1%}  {f}" for f, sec in sorted(ours.items(), key=lambda kv: -kv[1])[:top]]
    out.append("  by function (self time):")
    out += [
        f"    {sec:6.2f} s {sec / busy:6.1%}  {f}" for f, sec in sorted(functions.items(), key=lambda kv: -kv[1])[:top]
    ]
    return out
