"""A faust agent that does nothing but take and ack batches: faust's own ceiling.

Run by bench_stream.py as ``python load_tests/faust_noop.py worker`` with
BENCH_BOOTSTRAP and BENCH_PREFIX set; prints ``RESULT <events> <events/s>``.
"""

from __future__ import annotations

import os
import signal
import time

import faust

from streams.topics import FAMILIES, topic_name

PREFIX = os.environ["BENCH_PREFIX"]
app = faust.App(
    f"noop-{os.getpid()}",
    broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}",
    value_serializer="raw",
    key_serializer="raw",
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    broker_rebalance_timeout=6.0,
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    stream_buffer_maxsize=20_000,
    broker_max_poll_records=20_000,
)
source = app.topic(*[topic_name(PREFIX, f.name) for f in FAMILIES], value_type=bytes, key_type=bytes)
seen = {"n": 0, "first": 0.0, "last": 0.0}


@app.agent(source, concurrency=1)
async def noop(stream):  # type: ignore[no-untyped-def]
    async for events in stream.noack_take(20_000, within=0.5):
        seen["first"] = seen["first"] or time.time()
        seen["n"] += len(events)
        seen["last"] = time.time()
        for event in events:
            await stream.ack(event)


@app.timer(interval=1.0)
async def stop_when_idle() -> None:
    if seen["last"] and time.time() - seen["last"] > 4:
        rate = seen["n"] / max(1e-9, seen["last"] - seen["first"])
        print(f"RESULT {seen['n']} {rate:.0f}", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    app.main()
