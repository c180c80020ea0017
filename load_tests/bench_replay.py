"""Replay benchmark: 1M generated events end to end into the embedded ClickHouse.

    .venv/bin/python load_tests/bench_replay.py --events 1000000

Generates the events to a file first (not timed), then runs the same code as
``reelroi replay`` (read, parse, validate, attribute, write) and checks the
reports are queryable. Prints events/s, peak RSS and where the time went,
phase by phase (measured by wrapping each phase with a timer, in one run).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attribution import engine as engine_module  # noqa: E402
from attribution.engine import Engine  # noqa: E402
from attribution.policy import Policy  # noqa: E402
from reelroi import replay as replay_driver  # noqa: E402
from reelroi.generator import GeneratorConfig, generate  # noqa: E402
from reelroi.sources_io import read_records  # noqa: E402
from sinks import writer as writer_module  # noqa: E402
from sinks.connection import connect  # noqa: E402
from sinks.reports import commission_rows, roi_rows  # noqa: E402
from sinks.schema import migrate  # noqa: E402
from sinks.writer import ClickHouseSink  # noqa: E402


class Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def wrap(self, name: str, fn):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start

        return timed


def plain_pass(path: Path) -> float:
    """Seconds for orjson.loads and one dict update per line of ``path``: the floor replay is measured against."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--profile-phases", action="store_true", help="also time decode and row mapping separately")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reelroi-bench-"))
    try:
        source = work / "events.jsonl"
        with source.open("wb") as handle:
            for line in generate(GeneratorConfig(seed=7, days=args.days, events=args.events)):
                handle.write(line)
        lines = sum(1 for _ in source.open("rb"))
        print(f"generated {lines:,} lines ({source.stat().st_size / 1e6:.0f} MB) in {work}")
        floor_s = plain_pass(source)  # the ceiling: the simplest Python pass over the same file

        client = connect(f"chdb://{work}/chdb")
        migrate(client, "reelroi")
        sink = ClickHouseSink(client, "reelroi")
        timer = Timer()
        engine = Engine(Policy())
        engine.process = timer.wrap("engine (decode + attribute)", engine.process)  # type: ignore[method-assign]
        sink.write = timer.wrap("sink (rows + insert)", sink.write)  # type: ignore[method-assign]
        if args.profile_phases:
            engine_module.decode = timer.wrap("  of which decode + validate", engine_module.decode)  # type: ignore[assignment]
            writer_module.blocks = timer.wrap("  of which outputs -> rows", writer_module.blocks)  # type: ignore[assignment]
        started = time.perf_counter()
        sink.truncate()
        stats = replay_driver.run(
            engine, sink, read_records([str(source)], args.batch_size), replay_driver.Progress("bench")
        )
        replayed = time.perf_counter() - started
        query_start = time.perf_counter()
        roi = roi_rows(client, "reelroi")
        commission = commission_rows(client, "reelroi")
        queried = time.perf_counter() - query_start
        total = replayed + queried
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"records           {stats.records:,}")
        print(f"replay            {replayed:.1f} s  ({stats.records / replayed:,.0f} events/s)")
        print(f"reports           {queried:.2f} s  ({len(roi):,} ROI rows, {len(commission):,} commission rows)")
        print(f"end to end        {total:.1f} s  ({stats.records / total:,.0f} events/s)")
        floor = lines / floor_s
        print(
            f"orjson + dict     {floor_s:.1f} s  ({floor:,.0f} lines/s); replay is {stats.records / replayed / floor:.2f} of it"
        )
        print(f"rows written      {stats.rows_written:,}")
        print(f"peak RSS          {peak_mb:,.0f} MB")
        print("where the time goes:")
        for name, seconds in timer.totals.items():
            print(f"  {name:<30} {seconds:6.1f} s  {seconds / replayed:5.0%}")
        rest = replayed - sum(v for k, v in timer.totals.items() if not k.startswith("  "))
        print(f"  {'reading files, driver':<30} {rest:6.1f} s  {rest / replayed:5.0%}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
