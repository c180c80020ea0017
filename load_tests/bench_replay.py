"""Replay benchmark: generated events end to end into the embedded ClickHouse, sorted and shuffled.

    .venv/bin/python load_tests/bench_replay.py --events 300000 1200000 --order sorted shuffled
    .venv/bin/python load_tests/bench_replay.py --events 10000000 --order shuffled --days 30

For each size the events are generated to a file (not timed; ``--shuffle``
order is a full random permutation, ``--duplicate-share`` the share of
producer retries), then, for each order, the same file is read by the
simplest Python pass (orjson.loads and one dict update per line: the
ceiling, measured in the same run, so a busy machine slows both; the
fastest of ``--ceiling-runs`` passes, 3 by default) and by
``reelroi replay``'s own code in a fresh process (read, decode, route, stage
passes, write, with the worker processes it starts; timed once the store is
open, and the whole command's time, imports and opening included, is
printed too). Printed per run:
events/s, its ratio to the ceiling, peak RSS (the whole process tree,
sampled, and the largest single process), rows written, and where the time
went (pass 0, each stage's buckets summed over workers, the parent's
inserts). ``--profile`` adds a cProfile of a one-process run (pass 0 vs
stage passes vs sink inserts by function); ``--parts`` the CPU of each part
per line in one process (load_tests/replay_parts.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def plain_pass(path: Path) -> float:
    """Seconds for orjson.loads and one dict update per line of ``path``: the ceiling replay is measured against."""
    seen: dict[object, object] = {}
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(event) is dict:
                seen[event.get("event_id")] = event.get("type")
    return time.perf_counter() - started


def _tree_rss(pid: int) -> tuple[int, int]:
    """(sum, largest) resident kB of ``pid`` and its descendants, from /proc."""
    total = largest = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        kb = int(line.split()[1])
                        total += kb
                        largest = max(largest, kb)
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total, largest


def run_child(source: Path, work: Path, workers: int | None, mode: str = "--child") -> dict[str, Any]:
    """``reelroi replay``'s code on ``source`` in a fresh process (``--child-reattribute``: ``reelroi reattribute``
    over the database the replay left); its stats, and the tree's peak RSS."""
    env = dict(os.environ)
    if workers:
        env["REELROI_REPLAY_WORKERS"] = str(workers)
    env["REELROI_REPLAY_SPILL_DIR"] = str(work / "spill")
    out = work / "stats.json"
    child = subprocess.Popen(
        [sys.executable, __file__, mode, str(source), str(work / "chdb"), str(out)], env=env, cwd=ROOT
    )
    peak_sum = peak_one = 0
    while child.poll() is None:
        total, largest = _tree_rss(child.pid)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(0.1)
    if child.returncode:
        raise SystemExit(f"replay child exited {child.returncode}")
    stats: dict[str, Any] = json.loads(out.read_text())
    stats["peak_rss_mb"] = peak_sum / 1024
    stats["peak_one_mb"] = peak_one / 1024
    return stats


def child_main(source: str, db_dir: str, out: str) -> None:
    """What the parent process of ``reelroi replay`` runs (cli.cmd_replay), with its stats as JSON."""
    entered = time.perf_counter()
    from attribution.policy import Policy
    from reelroi.replay import replay
    from reelroi.sources_io import read_batches
    from sinks.connection import connect
    from sinks.reports import commission_rows, roi_rows
    from sinks.schema import migrate
    from sinks.writer import ClickHouseSink

    client = connect(f"chdb://{db_dir}")
    migrate(client, "reelroi")
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = replay(ClickHouseSink(client, "reelroi"), Policy(), read_batches([source]))
    replayed = time.perf_counter() - started
    command = time.perf_counter() - entered
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of this process (the embedded engine's threads included) and of the pool's workers (joined by now)
    parent_cpu, workers_cpu = (
        (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before, strict=True)
    )
    query_start = time.perf_counter()
    roi = roi_rows(client, "reelroi")
    commission = commission_rows(client, "reelroi")
    queried = time.perf_counter() - query_start
    users = client.query("SELECT count() FROM reelroi.users FINAL").result_rows[0][0]
    result = {
        "records": stats.records, "events": stats.events, "rows_written": stats.rows_written,
        "replay_s": replayed, "command_s": command, "reports_s": queried, "roi_rows": len(roi), "commission_rows": len(commission),
        "users": users, "timings": stats.timings, "parent_cpu_s": parent_cpu, "workers_cpu_s": workers_cpu,
    }  # fmt: skip
    Path(out).write_text(json.dumps(result))


def reattribute_main(source: str, db_dir: str, out: str) -> None:
    """``reelroi reattribute`` (cli.cmd_reattribute's code) under a 2-hour click window, over the replayed database."""
    from attribution.policy import Policy
    from reelroi.replay import reattribute
    from sinks.connection import connect
    from sinks.schema import migrate
    from sinks.writer import ClickHouseSink

    client = connect(f"chdb://{db_dir}")
    migrate(client, "reelroi")
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = reattribute(ClickHouseSink(client, "reelroi"), Policy(click_window_s=2 * 3600))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    parent_cpu, workers_cpu = (
        (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before, strict=True)
    )
    result = {"records": stats.records, "seconds": seconds, "parent_cpu_s": parent_cpu, "workers_cpu_s": workers_cpu}
    Path(out).write_text(json.dumps(result))


def profile(source: Path, work: Path, top: int) -> None:
    """A cProfile of a one-process replay: the functions that take the time, pass 0 and stage passes together."""
    import cProfile
    import pstats

    os.environ["REELROI_REPLAY_WORKERS"] = "1"
    os.environ["REELROI_REPLAY_SPILL_DIR"] = str(work / "spill")
    cProfile.runctx(
        "child_main(source, db, out)",
        globals(),
        {"child_main": child_main, "source": str(source), "db": str(work / "chdb-prof"), "out": str(work / "p.json")},
        str(work / "replay.prof"),
    )
    stats = pstats.Stats(str(work / "replay.prof"))
    print("cProfile, one process, by cumulative time (the parts):")
    stats.sort_stats("cumulative").print_stats(
        r"route_task|stage_task|Inserter.insert|read_batches|records|_write_rows|run_passes"
    )
    print(f"cProfile, top {top} by own time:")
    stats.sort_stats("tottime").print_stats(top)


def generate_file(path: Path, events: int, days: int, duplicates: float, shuffle: bool, seed: int) -> int:
    from reelroi.generator import GeneratorConfig, generate
    from reelroi.generator.shuffle import shuffled

    lines = generate(GeneratorConfig(seed=seed, days=days, events=events, duplicate_share=duplicates))
    count = 0
    with path.open("wb") as handle:
        for line in shuffled(lines, seed, directory=str(path.parent)) if shuffle else lines:
            handle.write(line)
            count += 1
    return count


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-reattribute":
        reattribute_main(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[300_000, 1_200_000])
    parser.add_argument("--order", nargs="+", choices=("sorted", "shuffled"), default=["sorted", "shuffled"])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--duplicate-share", type=float, default=0.01, help="producer retries (exact copies)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="REELROI_REPLAY_WORKERS (default: every core)")
    parser.add_argument("--profile", action="store_true", help="also cProfile a one-process run of the first case")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", help="generate into (and keep) this directory")
    parser.add_argument("--parts", action="store_true", help="also time each part of a replay in one process")
    parser.add_argument("--reattribute", action="store_true", help="also time a reattribute of each replayed db")
    parser.add_argument("--ceiling-runs", type=int, default=3, help="orjson passes per file; the fastest counts")
    parser.add_argument("--parts-lines", type=int, default=600_000, help="lines --parts takes (a worker's share)")
    args = parser.parse_args()

    base = Path(args.keep or tempfile.mkdtemp(prefix="reelroi-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        for events in args.events:
            for order in args.order:
                source = base / f"events-{events}-{order}.jsonl"
                if not source.exists():
                    lines = generate_file(
                        source, events, args.days, args.duplicate_share, order == "shuffled", args.seed
                    )
                    print(f"generated {lines:,} lines ({source.stat().st_size / 1e6:.0f} MB, {order})", flush=True)
                work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
                try:
                    if args.profile and not rows:
                        profile(source, work, args.top)
                    if args.parts:
                        from replay_parts import parts

                        parts(source, args.parts_lines)
                    # the fastest of a few passes: one pass swings by a tenth or more on this host, and the
                    # fastest is the least disturbed, so the ratio is against the ceiling at its best
                    ceiling_s = min(plain_pass(source) for _ in range(args.ceiling_runs))
                    stats = run_child(source, work, args.workers)
                    if args.reattribute:
                        stats["reattribute"] = run_child(source, work, args.workers, "--child-reattribute")
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                rate = stats["records"] / stats["replay_s"]
                ceiling = stats["records"] / ceiling_s
                row = {"events": events, "order": order, "rate": rate, "ratio": rate / ceiling, "ceiling": ceiling,
                       **stats}  # fmt: skip
                rows.append(row)
                _print_run(row)
        _print_table(rows)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def _print_run(row: dict[str, Any]) -> None:
    print(f"\n{row['events']:,} events, {row['order']}: {row['records']:,} records, {row['users']:,} users")
    print(
        f"  replay          {row['replay_s']:.1f} s  ({row['rate']:,.0f} events/s); the whole command "
        f"{row['command_s']:.1f} s (imports, opening the engine, the replay)"
    )
    print(f"  orjson + dict   {row['ceiling']:,.0f} lines/s (the fastest pass); replay is {row['ratio']:.3f} of it")
    print(f"  reports         {row['reports_s']:.2f} s  ({row['roi_rows']:,} ROI rows)")
    print(f"  rows written    {row['rows_written']:,}")
    total = row["parent_cpu_s"] + row["workers_cpu_s"]
    print(
        f"  CPU             {total:.1f} s = {total / row['records'] * 1e6:.1f} µs/event: parent (reading, "
        f"inserts, the engine's threads) {row['parent_cpu_s']:.1f} s, worker processes {row['workers_cpu_s']:.1f} s"
    )
    print(f"  peak RSS        {row['peak_rss_mb']:,.0f} MB all processes, {row['peak_one_mb']:,.0f} MB the largest")
    again = row.get("reattribute")
    if again:
        cpu = again["parent_cpu_s"] + again["workers_cpu_s"]
        print(
            f"  reattribute     {again['seconds']:.1f} s ({again['records'] / again['seconds']:,.0f} events/s, "
            f"{again['records'] / again['seconds'] / row['ceiling']:.3f} of the ceiling), peak RSS "
            f"{again['peak_rss_mb']:,.0f} MB all / {again['peak_one_mb']:,.0f} MB the largest, "
            f"CPU {cpu / again['records'] * 1e6:.1f} µs/event"
        )
    print("  where the time goes (seconds; 'all workers' sums the workers' task time):")
    for name, seconds in row["timings"].items():
        print(f"    {name:<42} {seconds:7.1f}")
    sys.stdout.flush()


def _cpu_per_event(row: dict[str, Any]) -> float:
    """The workers' CPU time per event (a busy machine stretches wall time much more than this)."""
    cpu = sum(v for k, v in row["timings"].items() if "(cpu" in k)
    return cpu / row["records"] * 1e6


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| events | order | events/s | ratio to orjson+dict | peak RSS (all / largest) | rows written "
        "| s/M events | CPU µs/event: all (workers) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per_m = r["replay_s"] / r["records"] * 1e6
        print(
            f"| {r['events']:,} | {r['order']} | {r['rate']:,.0f} | {r['ratio']:.3f} | "
            f"{r['peak_rss_mb']:,.0f} / {r['peak_one_mb']:,.0f} MB | {r['rows_written']:,} | {per_m:.1f} "
            f"| {(r['parent_cpu_s'] + r['workers_cpu_s']) / r['records'] * 1e6:.1f} ({_cpu_per_event(r):.1f}) |"
        )
    by_order: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_order.setdefault(r["order"], []).append(r)
    for order, runs in by_order.items():
        runs.sort(key=lambda r: r["records"])
        for small, large in itertools.pairwise(runs):
            growth = (large["replay_s"] / large["records"]) / (small["replay_s"] / small["records"])
            cpu = _cpu_per_event(large) / _cpu_per_event(small)
            print(
                f"{order}: time per event at {large['records'] / small['records']:.1f}x the data is {growth:.2f}x "
                f"(wall), {cpu:.2f}x (workers' CPU)"
            )


if __name__ == "__main__":
    main()
