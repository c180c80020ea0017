"""``reelroi demo``: broker, worker processes, the sink and a live ROI table in one command.

The pipeline is the production one (docs/design/streaming.md): the embedded
broker, ``--workers`` ``reelroi worker`` processes (router and keyed stages;
they never open ClickHouse) and one sink writing the facts topic into the
embedded ClickHouse. The sink runs in this process because the embedded
ClickHouse is one process at a time: the table is drawn by a timer of the
sink's own faust app from the same client, and queries and writes share one
lock.

Every child ends with the demo, whatever ends it. The broker (``reelroi
broker``) and the workers run in sessions of their own, so Ctrl-C reaches the
demo alone: it stops its sink while the broker still answers, then the
workers, then the broker (a faust worker whose broker is gone can take
minutes to stop). If the demo dies without its ``finally`` (SIGKILL), the
kernel signals them (``PR_SET_PDEATHSIG``): the workers SIGKILL, which loses
nothing (a stage partition restarts from its checkpoint, design note section
7), the broker SIGTERM, which stops its own child.

The traffic is ``reelroi.generator.live``: the generator's world at the wall
clock, each line sent when the clock reaches its ``ts``, for the whole run, the
same for the same ``--seed``. When the time is up the traffic stops and the
table is drawn until the sink has caught up (every line sent is in the event
log and no facts came for ``QUIET_S``), at most ``DRAIN_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import faust

from attribution.errors import ConfigError
from attribution.policy import Policy, format_duration
from attribution.stages.facts import Fact
from reelroi.children import Children
from reelroi.formatting import money, roi, table
from reelroi.generator import GeneratorConfig, live
from sinks.analytics import RoiFilter, roi_grouped, roi_totals
from sinks.writer import ClickHouseSink
from streams.broker import free_port
from streams.kafka_settings import KafkaSettings
from streams.produce import Batching, create_topics, produce
from streams.sink_stage import build_sink_app

BATCHES = Batching()  # a second's lines go out batched per partition, as SPEC 2 allows
LOCAL = timezone(timedelta(hours=8))  # the demo's traffic is Asia/Shanghai's
PREFIX = "demo."
PARTITIONS = 3
DRAIN_S = 20.0  # after the traffic stops, how long the table waits for the sink to catch up
QUIET_S = 3.0  # caught up: every line logged, and no facts written for this long
CLI = [sys.executable, "-m", "reelroi.cli"]


@dataclass
class DemoState:
    produced: int = 0
    started: float = 0.0
    last_events: int = 0
    last_at: float = 0.0
    latest_due: int = 0  # the second the latest line sent was due at (its ts)
    done_producing: bool = False


class DemoSink(ClickHouseSink):
    """The sink's ClickHouse writer, counting the input lines it has seen written.

    ``processed`` counts event-log rows and structural rejections: the router
    makes exactly one of them per input line, so ``produced - processed`` is the
    lines still on their way to the database. ``lock`` is held by the sink
    around every write (``build_sink_app``) and by the table around its queries.
    """

    def __init__(self, client: Any, db: str) -> None:
        super().__init__(client, db)
        self.lock = threading.Lock()  # the embedded engine: one query or insert at a time
        self.processed = 0
        self.batches = 0
        self.last_write_at = 0.0

    def write_facts(self, facts: Iterable[Fact]) -> int:
        facts = list(facts)
        written = super().write_facts(facts)
        self.processed += sum(1 for f in facts if f.kind == "event" or (f.kind == "rejection" and f.row.structural))
        self.batches += 1
        self.last_write_at = time.time()
        return written


def start_broker(children: Children, timeout: float = 30.0) -> str:
    """``reelroi broker`` (the embedded broker) on a free port; its bootstrap once it listens."""
    port = free_port()
    children.start("broker", [*CLI, "broker", "--port", str(port)], dict(os.environ), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children.processes["broker"].poll() is not None:
            raise ConfigError(f"the embedded broker did not start: {children.log_tail('broker')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise ConfigError(f"the embedded broker did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def start_workers(children: Children, count: int, bootstrap: str, policy: Policy) -> None:
    """``count`` ``reelroi worker`` processes with the demo's policy, sharing one checkpoint directory."""
    argv = [
        *CLI, "worker", "--bootstrap", bootstrap, "--topic-prefix", PREFIX,
        "--state-dir", str(children.work / "state"), "--tz", policy.tz, "--currency", policy.currency,
        "--click-window", format_duration(policy.click_window_s),
        "--view-window", format_duration(policy.view_window_s),
    ]  # fmt: skip
    # no /metrics (two workers would want one port), the demo's partition count, warnings only
    env = {**os.environ, "REELROI_METRICS_PORT": "0", "REELROI_KAFKA_PARTITIONS": str(PARTITIONS),
           "REELROI_LOG_LEVEL": "WARN"}  # fmt: skip
    for i in range(count):
        children.start(f"worker-{i}", argv, env, signal.SIGKILL)


def _money(value: Any) -> str:
    """SPEC display rounding, with thousands separators for a wide terminal table."""
    return f"{Decimal(money(value)):,.2f}"


def _roi(revenue: Any, spend: Any) -> str | None:
    return roi(revenue, spend)  # None (an empty cell) without spend


def render(sink: DemoSink, state: DemoState, minutes: float, children: Children, workers: int) -> str:
    with sink.lock:
        top = roi_grouped(sink.client, sink.db, RoiFilter(source_kind="campaign"), "campaign")[:10]
        totals = roi_totals(sink.client, sink.db, RoiFilter(source_kind="campaign"))
    now = time.time()
    processed = sink.processed
    rate = (processed - state.last_events) / (now - state.last_at) if state.last_at else 0.0
    state.last_events, state.last_at = processed, now
    lag = max(0, state.produced - processed)
    elapsed = now - state.started if state.started else 0.0
    latest = datetime.fromtimestamp(state.latest_due, LOCAL).strftime("%H:%M:%S") if state.latest_due else "-"
    head = (
        f"reelroi demo  {elapsed:5.0f}s / {minutes * 60:.0f}s   produced {state.produced:,}   "
        f"processed {processed:,}   {rate:,.0f} events/s   lag {lag:,}   latest event {latest} (UTC+8)"
    )
    running = children.running("worker-")
    if running < workers:
        head += f"   ({running} of {workers} workers running)"
    rows = [_row(r["source_id"], r["platform"], r, r["name"] or r["source_id"]) for r in top]
    if totals:
        rows.append(_row("all", "", totals, ""))
    foot = "money in CNY; cohort days in Asia/Shanghai; D0 = revenue on the day of acquisition"
    return "\n".join([head, "", table(rows) if rows else "(nothing attributed yet)", "", foot])


def _row(label: str, platform: str, r: dict[str, Any], name: str) -> dict[str, Any]:
    """One line of the live table; ``formatting.table`` escapes what comes from the data (ids, names)."""
    return {
        "campaign": label,
        "platform": platform,
        "spend": _money(r["spend"]),
        "D0 revenue": _money(r["revenue_d0"]),
        "D0 ROI": _roi(r["revenue_d0"], r["spend"]),
        "total rev.": _money(r["revenue_total"]),
        "total ROI": _roi(r["revenue_total"], r["spend"]),
        "new users": r["new_users"],
        "name": name[:40],
    }


def demo_traffic(seed: int, begin: int, rate: int) -> Iterator[tuple[int, bytes]]:
    """The demo's traffic from epoch second ``begin``: ``(second due, line)``, the same for the same arguments."""
    # Every configured campaign has a name here; the two-day horizon outlasts any demo started before midnight.
    return live(GeneratorConfig(seed=seed, days=2, named_share=1.0), begin, rate)


def _producer(bootstrap: str, prefix: str, seed: int, rate: int, state: DemoState, stop: threading.Event) -> None:
    """Send each line when the wall clock reaches the second it is due (its ts), in batches of one second."""
    batch: list[bytes] = []
    try:
        for due, line in demo_traffic(seed, int(time.time()), rate):
            if stop.is_set():
                break
            if due > time.time():
                if batch:
                    state.produced += produce(bootstrap, prefix, batch, batching=BATCHES)
                    batch = []
                stop.wait(max(0.0, due - time.time()))
            batch.append(line)
            state.latest_due = due
            if len(batch) >= 5000:
                state.produced += produce(bootstrap, prefix, batch, batching=BATCHES)
                batch = []
        if batch and not stop.is_set():
            state.produced += produce(bootstrap, prefix, batch, batching=BATCHES)
    finally:
        state.done_producing = True


def run_demo(sink: ClickHouseSink, policy: Policy, minutes: float, rate: int, seed: int = 42, workers: int = 2) -> int:
    """Start everything, stream for ``minutes``, draw the table every 2 s, then summarise."""
    work = Path(tempfile.mkdtemp(prefix="reelroi-demo-"))  # checkpoints and logs, removed at the end
    children = Children(work)
    writer = DemoSink(sink.client, sink.db)
    state = DemoState()
    stop = threading.Event()
    try:
        bootstrap = start_broker(children)
        kafka = KafkaSettings(bootstrap=bootstrap, topic_prefix=PREFIX, partitions=PARTITIONS)
        create_topics(kafka.bootstrap, kafka.topic_prefix, kafka.partitions)
        start_workers(children, workers, bootstrap, policy)
        _run_sink(kafka, writer, state, stop, minutes, rate, seed, children, workers)
    finally:
        stop.set()
        died = [(name, status) for name, status in children.ended() if name.startswith("worker-")]
        children.stop("worker-")  # while the broker still answers: their shutdown is quick then
        children.stop("broker")
        children.close()
        for name, status in died:
            print(f"\n{name} ended early, status {status}:\n{children.log_tail(name)}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nsummary: seed {seed}, produced {state.produced:,} events, processed {writer.processed:,} in "
        f"{writer.batches:,} sink batches by {workers} worker processes; the database stays in place: "
        f"reelroi roi / reelroi serve read it",
        file=sys.stderr,
    )
    return 0


def _run_sink(
    kafka: KafkaSettings,
    writer: DemoSink,
    state: DemoState,
    stop: threading.Event,
    minutes: float,
    rate: int,
    seed: int,
    children: Children,
    workers: int,
) -> None:
    """The sink's faust app in this process, with the traffic and the table on it, until the time is up."""
    app = build_sink_app(kafka, writer, lock=writer.lock)
    producer = threading.Thread(
        target=_producer, args=(kafka.bootstrap, kafka.topic_prefix, seed, rate, state, stop), daemon=True
    )
    interactive = sys.stdout.isatty()

    @app.task  # type: ignore[untyped-decorator]
    async def start_producing() -> None:
        state.started = time.time()
        producer.start()

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def draw() -> None:
        drawn = await asyncio.to_thread(render, writer, state, minutes, children, workers)
        print(("\x1b[2J\x1b[H" if interactive else "\n") + drawn, flush=True)
        over = time.time() - state.started - minutes * 60
        if state.started and over > 0:
            stop.set()
            # every line in the event log, and the stages' facts that follow them written too
            quiet = time.time() - writer.last_write_at > QUIET_S
            caught_up = state.done_producing and writer.processed >= state.produced and quiet
            if caught_up or over > DRAIN_S:
                os.kill(os.getpid(), signal.SIGTERM)  # the faust Worker's own clean shutdown

    runner = faust.Worker(app, loglevel="ERROR", quiet=True, redirect_stdouts=False)
    # faust draws a progress spinner on a terminal whatever ``quiet`` says (faust/worker.py creates it in
    # __init__ and feeds it every log record); at shutdown it spills sprites over the table.
    runner.spinner = None
    with contextlib.suppress(SystemExit):  # the faust Worker exits when it has stopped
        runner.execute_from_commandline()
