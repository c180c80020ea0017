"""``reelroi demo``: broker, worker and embedded ClickHouse in one command, with a live ROI table.

The worker is the real faust worker (same agent, engine and sink). The table
is drawn by a timer inside the worker's own process, because the embedded
ClickHouse is one process at a time; queries and writes share one lock.

The traffic is ``reelroi.generator.live``: the generator's world at the wall
clock, each line sent when the clock reaches its ``ts``, for the whole run, the
same for the same ``--seed``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import faust

from attribution.policy import Policy
from reelroi.formatting import money, roi, table
from reelroi.generator import GeneratorConfig, live
from sinks.analytics import RoiFilter, roi_grouped, roi_totals
from sinks.writer import ClickHouseSink
from streams.attributor import Attributor
from streams.broker import EmbeddedBroker
from streams.produce import Batching, create_topics, produce
from streams.worker import KafkaSettings, build_app

BATCHES = Batching()  # a second's lines go out batched per partition, as SPEC 2 allows
LOCAL = timezone(timedelta(hours=8))  # the demo's traffic is Asia/Shanghai's


@dataclass
class DemoState:
    produced: int = 0
    started: float = 0.0
    last_events: int = 0
    last_at: float = 0.0
    latest_due: int = 0  # the second the latest line sent was due at (its ts)
    done_producing: bool = False


def _money(value: Any) -> str:
    """SPEC display rounding, with thousands separators for a wide terminal table."""
    return f"{Decimal(money(value)):,.2f}"


def _roi(revenue: Any, spend: Any) -> str | None:
    return roi(revenue, spend)  # None (an empty cell) without spend


def render(attributor: Attributor, state: DemoState, minutes: float) -> str:
    sink = attributor.sink
    with attributor.lock:
        top = roi_grouped(sink.client, sink.db, RoiFilter(source_kind="campaign"), "campaign")[:10]
        totals = roi_totals(sink.client, sink.db, RoiFilter(source_kind="campaign"))
    now = time.time()
    rate = (attributor.events - state.last_events) / (now - state.last_at) if state.last_at else 0.0
    state.last_events, state.last_at = attributor.events, now
    lag = max(0, state.produced - attributor.events)
    elapsed = now - state.started
    latest = datetime.fromtimestamp(state.latest_due, LOCAL).strftime("%H:%M:%S") if state.latest_due else "-"
    head = (
        f"reelroi demo  {elapsed:5.0f}s / {minutes * 60:.0f}s   produced {state.produced:,}   "
        f"processed {attributor.events:,}   {rate:,.0f} events/s   lag {lag:,}   latest event {latest} (UTC+8)"
    )
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


def run_demo(sink: ClickHouseSink, policy: Policy, minutes: float, rate: int, seed: int = 42) -> int:
    """Start everything, stream for ``minutes``, draw the table every 2 s, then summarise."""
    broker = EmbeddedBroker().start()
    settings = KafkaSettings(bootstrap=broker.bootstrap, topic_prefix="demo.", partitions=3, batch_within_s=0.5)
    create_topics(settings.bootstrap, settings.topic_prefix, settings.partitions)
    worker = build_app(settings, sink, policy)
    app, attributor = worker.app, worker.attributor
    state = DemoState(started=time.time())
    stop = threading.Event()
    producer = threading.Thread(
        target=_producer, args=(settings.bootstrap, settings.topic_prefix, seed, rate, state, stop), daemon=True
    )
    interactive = sys.stdout.isatty()

    @app.task  # type: ignore[untyped-decorator]
    async def start_producing() -> None:
        producer.start()

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def draw() -> None:
        table = await asyncio.to_thread(render, attributor, state, minutes)
        print(("\x1b[2J\x1b[H" if interactive else "\n") + table, flush=True)
        if time.time() - state.started > minutes * 60:
            stop.set()
            os.kill(os.getpid(), signal.SIGTERM)

    runner = faust.Worker(app, loglevel="ERROR", quiet=True, redirect_stdouts=False)
    # faust draws a progress spinner on a terminal whatever ``quiet`` says (faust/worker.py creates it in
    # __init__ and feeds it every log record); at shutdown it spills sprites over the table.
    runner.spinner = None
    try:
        runner.execute_from_commandline()
    except SystemExit:
        pass
    finally:
        stop.set()
        broker.stop()
    print(
        f"\nsummary: seed {seed}, produced {state.produced:,} events, processed {attributor.events:,} in {attributor.batches:,} "
        f"batches; the database stays in place: reelroi roi / reelroi serve read it",
        file=sys.stderr,
    )
    return 0
