"""``reelroi demo``: broker, worker and embedded ClickHouse in one command, with a live ROI table.

The worker is the real faust worker (same agent, engine and sink). The table
is drawn by a timer inside the worker's own process, because the embedded
ClickHouse is one process at a time; queries and writes share one lock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import faust

from attribution.policy import Policy
from reelroi.formatting import money, roi
from reelroi.generator import GeneratorConfig, generate
from sinks.analytics import RoiFilter, roi_grouped, roi_totals
from sinks.writer import ClickHouseSink
from streams.attributor import Attributor
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from streams.worker import KafkaSettings, build_app


@dataclass
class DemoState:
    produced: int = 0
    started: float = 0.0
    last_events: int = 0
    last_at: float = 0.0
    done_producing: bool = False


def _money(value: Any) -> str:
    """SPEC display rounding, with thousands separators for a wide terminal table."""
    return f"{Decimal(money(value)):,.2f}"


def _roi(revenue: Any, spend: Any) -> str:
    return roi(revenue, spend) or "   -  "


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
    lines = [
        f"reelroi demo  {elapsed:5.0f}s / {minutes * 60:.0f}s   produced {state.produced:,}   "
        f"processed {attributor.events:,}   {rate:,.0f} events/s   lag {lag:,}",
        "",
        f"{'campaign':<10} {'platform':<9} {'spend':>12} {'revenue':>12} {'D0 ROI':>8} {'new users':>10}  name",
    ]
    for row in top:
        lines.append(
            f"{row['source_id']:<10} {row['platform']:<9} {_money(row['spend']):>12} "
            f"{_money(row['revenue_total']):>12} {_roi(row['revenue_d0'], row['spend']):>8} "
            f"{row['new_users']:>10,}  {row['name'][:40]}"
        )
    if totals:
        lines += [
            "",
            f"{'all':<10} {'':<9} {_money(totals['spend']):>12} {_money(totals['revenue_total']):>12} "
            f"{_roi(totals['revenue_d0'], totals['spend']):>8} {totals['new_users']:>10,}",
        ]
    return "\n".join(lines)


def _producer(bootstrap: str, prefix: str, rate: int, state: DemoState, stop: threading.Event) -> None:
    lines = generate(
        GeneratorConfig(seed=int(time.time()) % 1000, start_date=date.today(), days=1, users_per_day=40_000)
    )
    batch: list[bytes] = []
    tick = time.perf_counter()
    for line in lines:
        if stop.is_set():
            break
        batch.append(line)
        if len(batch) >= max(1, rate // 4):
            state.produced += produce(bootstrap, prefix, batch)
            batch = []
            tick += 0.25
            time.sleep(max(0.0, tick - time.perf_counter()))
    state.done_producing = True


def run_demo(sink: ClickHouseSink, policy: Policy, minutes: float, rate: int) -> int:
    """Start everything, stream for ``minutes``, draw the table every 2 s, then summarise."""
    broker = EmbeddedBroker().start()
    settings = KafkaSettings(bootstrap=broker.bootstrap, topic_prefix="demo.", partitions=3, batch_within_s=0.5)
    create_topics(settings.bootstrap, settings.topic_prefix, settings.partitions)
    worker = build_app(settings, sink, policy)
    app, attributor = worker.app, worker.attributor
    state = DemoState(started=time.time())
    stop = threading.Event()
    producer = threading.Thread(
        target=_producer, args=(settings.bootstrap, settings.topic_prefix, rate, state, stop), daemon=True
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

    try:
        faust.Worker(app, loglevel="ERROR", quiet=True, redirect_stdouts=False).execute_from_commandline()
    except SystemExit:
        pass
    finally:
        stop.set()
        broker.stop()
    print(
        f"\nsummary: produced {state.produced:,} events, processed {attributor.events:,} in {attributor.batches:,} "
        f"batches; the database stays in place: reelroi roi / reelroi serve read it",
        file=sys.stderr,
    )
    return 0
