"""Several reelroi workers in ONE consumer group, in one process (run as a script by the tests).

The embedded ClickHouse opens a directory in one process only, so the workers
here are threads, each with its own event loop, faust app, Kafka consumer and
group membership, sharing one ClickHouse client (as they would share a server).
A schedule says when each worker starts and, optionally, stops:

    python tests/streams/group_harness.py --db DIR --bootstrap HOST:PORT --prefix P \\
        --start 0 --start 8 --stop 0@20 --idle 15 --out result.json

Exits once every scheduled change has happened and nothing has been attributed
for ``--idle`` seconds, writing per-worker figures and the attributor epochs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import faust

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from attribution.policy import Policy
from reelroi.replay import policy_settings
from sinks.connection import connect
from sinks.schema import migrate
from sinks.writer import ClickHouseSink
from streams.metrics import MetricsSettings, serve_metrics
from streams.worker import KafkaSettings, Worker, build_app


class ThreadWorker(faust.Worker):
    """A faust worker that runs outside the main thread (signals belong to the main thread)."""

    def install_signal_handlers(self) -> None:
        pass


class Member:
    def __init__(self, index: int, settings: KafkaSettings, sink: ClickHouseSink, lock: threading.Lock) -> None:
        self.index = index
        self.settings = settings
        self.sink = sink
        self.lock = lock
        self.worker: Worker | None = None
        self.runner: ThreadWorker | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"worker-{index}", daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.worker = build_app(self.settings, self.sink, Policy(), self.lock, name=f"worker-{self.index}")
        self.runner = ThreadWorker(
            self.worker.app, loop=self.loop, loglevel="WARNING", quiet=True, redirect_stdouts=False,
            override_logging=False,
        )  # fmt: skip
        self.ready.set()
        try:
            self.runner.execute_from_commandline()
        except SystemExit:
            pass

    def start(self) -> None:
        self.thread.start()
        self.ready.wait()

    def stop(self) -> None:
        assert self.loop is not None and self.runner is not None
        self.loop.call_soon_threadsafe(self.runner._schedule_shutdown, signal.SIGTERM)
        self.thread.join(timeout=60)

    def figures(self) -> dict[str, Any]:
        assert self.worker is not None
        return {
            "partitions_taken": sorted(f"{t}:{p}" for t, p in self.worker.consumed),
            "attributed": self.worker.attributor.events,
            "attribution_batches": self.worker.attributor.batches,
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--start", type=float, action="append", default=[], help="seconds: start a worker then")
    parser.add_argument("--stop", action="append", default=[], help="INDEX@SECONDS: stop that worker then")
    parser.add_argument("--break-intake", type=float, help="seconds: rename the intake table away (writes fail)")
    parser.add_argument("--heal-file", type=Path, help="once this file exists, rename the intake table back")
    parser.add_argument("--idle", type=float, default=15.0)
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(threadName)s %(name)s %(message)s")

    client = connect(f"chdb://{args.db}")
    migrate(client, "reelroi")
    sink = ClickHouseSink(client, "reelroi")
    sink.save_settings(policy_settings(Policy()))
    serve_metrics(MetricsSettings(port=args.metrics_port))
    settings = KafkaSettings(bootstrap=args.bootstrap, topic_prefix=args.prefix, batch_max=2000)
    lock = threading.Lock()
    members = [Member(i, settings, sink, lock) for i in range(len(args.start))]
    events: list[tuple[float, str, int]] = [(t, "start", i) for i, t in enumerate(args.start)]
    for item in args.stop:
        index, at = item.split("@")
        events.append((float(at), "stop", int(index)))
    if args.break_intake is not None:
        events.append((args.break_intake, "break", -1))
    events.sort()
    began = time.monotonic()
    for at, what, index in events:
        time.sleep(max(0.0, began + at - time.monotonic()))
        print(f"{time.monotonic() - began:6.1f}s {what} worker-{index}", file=sys.stderr, flush=True)
        if what == "break":
            with lock:
                client.command("RENAME TABLE reelroi.intake TO reelroi.intake_broken")
            continue
        (members[index].start if what == "start" else members[index].stop)()
    healed_at = 0.0
    if args.heal_file is not None:
        while not args.heal_file.exists():
            time.sleep(0.5)
        with lock:
            client.command("RENAME TABLE reelroi.intake_broken TO reelroi.intake")
        healed_at = time.time()
        print(f"{time.monotonic() - began:6.1f}s healed", file=sys.stderr, flush=True)
    while True:
        time.sleep(1.0)
        last = max((m.worker.attributor.last_batch_at or 0.0) for m in members if m.worker is not None)
        last = max(last, healed_at)  # failed writes retry with up to 15 s between tries
        if last and time.time() - last > args.idle:
            break
    running = [m for m in members if m.thread.is_alive()]
    for member in running:
        member.stop()
    with lock:
        epochs = client.query("SELECT worker FROM reelroi.attribution_epochs ORDER BY epoch").result_rows
    result = {"workers": [m.figures() for m in members], "leaders": [w for (w,) in epochs]}
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
