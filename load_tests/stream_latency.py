"""Freshness at a steady rate and takeover after kill -9 (bench_stream.py)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from stream_cluster import Cluster, Proc, Watch, disk_bytes, labelled
from stream_drain import PARTITIONS, preload, until_drained, wait_quiet

from reelroi.generator import GeneratorConfig, generate
from streams.produce import Batching, create_topics, produce
from streams.topics import FACTS_TOPIC, topic_name


def paced(lines: list[bytes], rate: float, sent: list[float]) -> Iterator[bytes]:
    """``lines`` at ``rate`` a second from now; ``sent[i]`` gets the wall time line i was handed on."""
    start = time.perf_counter()
    for i, line in enumerate(lines):
        ahead = start + i / rate - time.perf_counter()
        if ahead > 0.005:
            time.sleep(ahead)
        sent.append(time.time())
        yield line


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Freshness:
    rate: float
    seconds: float
    achieved: float  # events/s actually handed to the producer
    lags: dict[str, list[float]] = field(default_factory=dict)  # what -> seconds, one per fact
    missing: dict[str, int] = field(default_factory=dict)


def freshness(
    bootstrap: str, work: Path, rate: int, seconds: int, workers: int, env: dict[str, str] | None = None
) -> Freshness:
    prefix = "f."
    create_topics(bootstrap, prefix, PARTITIONS)
    warm = 2000
    lines = list(generate(GeneratorConfig(seed=8, days=3, events=int(rate * seconds * 1.05) + warm)))
    steady = lines[warm : warm + rate * seconds]
    cluster = Cluster(bootstrap, prefix, work, env)
    probe = work / "probe.json"
    sink = cluster.sink("sink", f"chdb://{work / 'db'}", probe=probe)
    procs = [cluster.worker(f"worker-{i}") for i in range(workers)]
    watch = Watch([sink, *procs]).start()
    try:
        produce(bootstrap, prefix, lines[:warm], batching=Batching())  # the pipeline is live before the clock
        wait_quiet(watch, warm, timeout=300)
        sent: list[float] = []
        started = time.perf_counter()
        produce(bootstrap, prefix, paced(steady, rate, sent), batching=Batching())
        achieved = len(steady) / (time.perf_counter() - started)
        until_drained(watch, bootstrap, prefix, warm + len(steady), timeout=600)
    finally:
        watch.stop()
        cluster.stop()
    written = orjson.loads(probe.read_bytes())
    return _freshness_of(steady, sent, written, rate, seconds, achieved)


def _freshness_of(
    steady: list[bytes], sent: list[float], written: dict[str, Any], rate: float, seconds: float, achieved: float
) -> Freshness:
    out = Freshness(rate, seconds, achieved)
    first_sent: dict[str, float] = {}
    first_redirect: dict[str, float] = {}
    money_events: set[str] = set()
    for line, t in zip(steady, sent, strict=True):
        try:
            ev = orjson.loads(line)
            eid, kind = ev["event_id"], ev["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        if not isinstance(eid, str):
            continue
        first_sent.setdefault(eid, t)
        if kind == "redirect" and isinstance(ev.get("user_id"), str):
            first_redirect.setdefault(ev["user_id"], t)
        if kind in ("payment", "ad_unlock"):
            money_events.add(eid)
    for what, table, ids in (("event log row", "event", first_sent), ("user fact", "user", first_redirect)):
        found = [written[table][i] - t for i, t in ids.items() if i in written[table]]
        out.lags[what] = found
        out.missing[what] = len(ids) - len(found)
    money = []
    for eid in money_events:
        got = written["money"].get(eid)
        if got is not None:
            at, user, _kind = got
            money.append(at - max(first_sent[eid], first_redirect.get(user, 0.0)))
    out.lags["money fact"] = money
    out.missing["money fact"] = len(money_events) - len(money)
    return out


class FactsTap:
    """Reads the facts topic from its end in a thread: the first record time per partition of each kind."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic_name(prefix, FACTS_TOPIC)
        self.first: dict[tuple[int, str], float] = {}  # (partition, "user" | "event") -> record time
        self.since = float("inf")  # records stamped at or before this are not counted
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="facts-tap", daemon=True)

    def start(self) -> FactsTap:
        self._thread.start()
        self.ready.wait(30)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, max_partition_fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        try:
            parts = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            consumer.assign(parts)
            await consumer.seek_to_end(*parts)
            for tp in parts:
                await consumer.position(tp)
            self.ready.set()
            while not self._stop.is_set():
                for tp, messages in (await consumer.getmany(timeout_ms=200)).items():
                    for m in messages:
                        at = m.timestamp / 1000 if m.timestamp and m.timestamp > 0 else time.time()
                        if at <= self.since:
                            continue
                        for line in (m.value or b"").split(b"\n"):
                            kind = line[2 : line.find(b'"', 2)]
                            group = "user" if kind in (b"user", b"money") else "event" if kind == b"event" else ""
                            if group:
                                self.first.setdefault((tp.partition, group), at)
        finally:
            await consumer.stop()


@dataclass
class Takeover:
    history: int  # events loaded in all
    held: list[int]  # user-stage partitions the killed worker held
    held_share: float
    held_keys: float  # keys of those partitions (users)
    held_bytes: int  # checkpoint bytes of every stage partition it held
    to_user_fact: dict[int, float]  # partition -> seconds from the kill to its first user/money fact
    to_event_fact: dict[int, float]
    first_load_after: float | None  # seconds from the kill to the survivor's first checkpoint load
    loads: dict[str, tuple[float, float]]  # stage -> (loads, seconds) by the survivor after the kill
    rss_mb: dict[str, float]


def holders(procs: list[Proc]) -> dict[tuple[str, int], str]:
    """Who holds each stage partition: the worker that checkpointed it last."""
    latest: dict[tuple[str, int], tuple[float, str]] = {}
    for proc in procs:
        for labels, at in labelled(proc.metrics(), "reelroi_stage_checkpoint_timestamp_seconds"):
            key = (labels["stage"], int(labels["partition"]))
            if at > latest.get(key, (0.0, ""))[0]:
                latest[key] = (at, proc.name)
    return {key: name for key, (_, name) in latest.items()}


def takeover(bootstrap: str, work: Path, behind: int, trickle_rate: int) -> Takeover:
    prefix = "k."
    lines = list(generate(GeneratorConfig(seed=9, days=3, events=2 * behind + trickle_rate * 120)))
    history, trickle = lines[: 2 * behind], lines[2 * behind :]
    sent, _, _ = preload(bootstrap, prefix, history, Batching())
    cluster = Cluster(bootstrap, prefix, work)
    a, b = cluster.worker("worker-a"), cluster.worker("worker-b")
    watch = Watch([a, b]).start()
    stop_trickle = threading.Event()
    try:
        if not until_drained(watch, bootstrap, prefix, sent, timeout=3600, sink=False):
            print("  (the workers' group is not drained: the tail after the checkpoint is re-read too)")
        held_by = holders([a, b])
        users = {
            name: [p for (stage, p), n in held_by.items() if stage == "user" and n == name]
            for name in ("worker-a", "worker-b")
        }
        victim, survivor = (a, b) if len(users["worker-a"]) >= len(users["worker-b"]) else (b, a)
        held = sorted(users[victim.name])
        keys = sum(v for labels, v in labelled(victim.metrics(), "reelroi_stage_keys")
                   if labels["stage"] == "user" and int(labels["partition"]) in held)  # fmt: skip
        held_bytes = sum(
            disk_bytes(cluster.state / stage / str(p)) for (stage, p), n in held_by.items() if n == victim.name
        )
        rss = {p.name: p.peak_rss_mb() for p in (a, b)}
        before = survivor.metrics()
        tap = FactsTap(bootstrap, prefix).start()

        def flow() -> None:
            produce(bootstrap, prefix, _until(paced(trickle, trickle_rate, []), stop_trickle), batching=Batching())

        flowing = threading.Thread(target=flow, name="trickle", daemon=True)
        flowing.start()
        time.sleep(5.0)
        killed_at = tap.since = time.time()
        victim.stop(signal.SIGKILL)
        deadline = time.time() + 180
        while time.time() < deadline and not all((p, "user") in tap.first for p in held):
            time.sleep(0.25)
        time.sleep(2.0)
        after = survivor.metrics()
        stop_trickle.set()
        flowing.join(timeout=30)
        tap.stop()
    finally:
        watch.stop()
        cluster.stop()
    loads = {}
    for labels, count in labelled(after, "reelroi_stage_load_seconds_count"):
        stage = labels["stage"]
        seconds = next(v for lb, v in labelled(after, "reelroi_stage_load_seconds_sum") if lb["stage"] == stage)
        n0 = next((v for lb, v in labelled(before, "reelroi_stage_load_seconds_count") if lb["stage"] == stage), 0.0)
        s0 = next((v for lb, v in labelled(before, "reelroi_stage_load_seconds_sum") if lb["stage"] == stage), 0.0)
        loads[stage] = (count - n0, seconds - s0)
    first_load = _first_increase(watch, survivor.name, killed_at)
    return Takeover(
        history=sent,
        held=held,
        held_share=len(held) / PARTITIONS,
        held_keys=keys,
        held_bytes=held_bytes,
        to_user_fact={p: tap.first[(p, "user")] - killed_at for p in held if (p, "user") in tap.first},
        to_event_fact={p: tap.first[(p, "event")] - killed_at for p in held if (p, "event") in tap.first},
        first_load_after=first_load,
        loads=loads,
        rss_mb=rss,
    )


def _until(lines: Iterable[bytes], stop: threading.Event) -> Iterator[bytes]:
    for line in lines:
        if stop.is_set():
            return
        yield line


def _first_increase(watch: Watch, name: str, after: float) -> float | None:
    """Seconds from ``after`` to the first scrape whose checkpoint-load count grew."""
    series = watch.series("reelroi_stage_load_seconds_count", [name])
    base = next((v for t, v in reversed(series) if t <= after), 0.0)
    return next((t - after for t, v in series if t > after and v > base), None)
