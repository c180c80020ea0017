"""Throughput and latency of ``reelroi collect`` on loopback, with the embedded broker behind it.

    .venv/bin/python load_tests/bench_collect.py [--seconds 10] [--rate 2000]

Three runs against one real collector process (its own token store, acks=all):
1. batched POSTs of 1,000 lines (wrk, 4 connections): requests/s and events/s acknowledged;
2. monitor GETs as fast as wrk drives them (32 connections): requests/s, and events/s into Kafka
   (lines the collector's flusher had acknowledged, from its /metrics, once its buffer drained);
3. monitor GETs at a steady ``--rate`` requests/s from an open-loop asyncio aiohttp client in a
   separate process (latency measured from each request's scheduled time, so a stall counts).
Needs Debian's ``wrk`` (``apt-get install -y wrk``). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "reelroi.cli"]

_LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("PCT %.3f %.3f %.3f\\n", latency:percentile(50)/1000, latency:percentile(99)/1000,
    latency:percentile(99.9)/1000))
  io.write(string.format("STATUS %d %d\\n", summary.requests, summary.errors.status))
end
"""


def wrk(url: str, script: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + _LUA_DONE)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", handle.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pct = re.search(r"PCT ([\d.]+) ([\d.]+) ([\d.]+)", out)
    status = re.search(r"STATUS (\d+) (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert pct and status and rps, out
    return {"requests_per_s": float(rps.group(1)), "p50_ms": float(pct.group(1)), "p99_ms": float(pct.group(2)),
            "p999_ms": float(pct.group(3)), "requests": int(status.group(1)), "non_2xx": int(status.group(2))}  # fmt: skip


def metric(url: str, name: str) -> float:
    import httpx

    text = httpx.get(url + "/metrics").text
    found = re.search(rf"^{name} ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def steady(url: str, rate: int, seconds: float) -> dict[str, float]:
    """Open loop: request i leaves at start + i/rate whatever came back before."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            try:
                async with session.get(url.replace("CLICK", f"s{i}")) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.2
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        achieved = len(tasks) / (time.perf_counter() - start)
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {"rate": rate, "achieved_per_s": round(achieved), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "p999_ms": pct(0.999), "requests": len(latencies), "errors": errors}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--steady-client", help=argparse.SUPPRESS)  # the load generator's own process
    args = parser.parse_args()
    if args.steady_client:
        print(json.dumps(asyncio.run(steady(args.steady_client, args.rate, args.seconds))))
        return 0

    from reelroi.collect.links import link_key_of_token
    from reelroi.generator import GeneratorConfig, generate
    from streams.broker import EmbeddedBroker, free_port
    from streams.produce import create_topics

    work = Path(tempfile.mkdtemp(prefix="reelroi-collect-bench-"))
    dsn = f"chdb://{work / 'tokens'}"
    token = subprocess.run([*CLI, "token", "create", "--db", dsn, "--role", "producer"], capture_output=True,
                           check=True, cwd=work).stdout.decode().strip()  # fmt: skip
    body = b"".join(list(generate(GeneratorConfig(seed=1, days=1, events=1200, malformed_share=0)))[:1000])
    (work / "body.jsonl").write_bytes(body)
    result: dict[str, object] = {"cpus": os.cpu_count(), "post_lines_per_request": 1000, "post_body_bytes": len(body)}
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, "b.", partitions=6)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([*CLI, "collect", "--db", dsn, "--bootstrap", broker.bootstrap, "--topic-prefix", "b.",
                                 "--port", str(port)], cwd=work, start_new_session=True)  # fmt: skip
        try:
            import httpx

            for _ in range(100):
                try:
                    httpx.get(url + "/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.3)
            post = f"""
local f = io.open("{work / "body.jsonl"}", "rb"); local body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Authorization"] = "Bearer {token}"; wrk.headers["Content-Type"] = "application/x-ndjson"
"""
            posts = wrk(url + "/collect/v1/events", post, args.seconds, 4)
            posts["events_per_s"] = round(posts["requests_per_s"] * 1000)
            result["post_1000_lines"] = posts
            key = link_key_of_token(token, "oceanengine")
            query = f"link_key={key}&clickid=CLICK&promotion_id=7301&ts=1762000000123&oaid=oaid-CLICK&callback=cb"
            get = """
local n = 0
request = function()
  n = n + 1
  local path = string.gsub("/collect/v1/click/oceanengine?QUERY", "CLICK", "w" .. n)
  return wrk.format("GET", path)
end
""".replace("QUERY", query)
            sent_before = metric(url, "reelroi_collect_click_lines_sent")
            started = time.perf_counter()
            gets = wrk(url, get, args.seconds, 32)
            while metric(url, "reelroi_collect_click_queue_lines") > 0:
                time.sleep(0.05)
            sent = metric(url, "reelroi_collect_click_lines_sent") - sent_before
            gets["events_per_s"] = round(sent / (time.perf_counter() - started))
            gets["events_into_kafka"] = int(sent)
            result["monitor_get_max"] = gets
            client = subprocess.run(
                [sys.executable, __file__, "--steady-client", f"{url}/collect/v1/click/oceanengine?{query}",
                 "--rate", str(args.rate), "--seconds", str(args.seconds)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            result[f"monitor_get_steady_{args.rate}"] = json.loads(client.stdout)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
