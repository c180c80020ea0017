"""What the router's fast path costs a line, against parsing the same line alone.

    .venv/bin/python load_tests/bench_fast_path.py --lines 300000

Over the first ``--lines`` lines of a generated, shuffled history (3 days, as
bench_replay.py makes them; ``--file`` to use one), in one process, each way
``--rounds`` times, alternating, the least CPU kept (this host's speed drifts
within a minute; alternating gives each way the same drift):

- ``orjson.loads`` alone (the parse the slow path starts with: the ceiling);
- msgspec's decode into the fast path's typed structs alone (``fast_path._decode``);
- ``fast_decode``, the whole fast path (parse, field checks, money and currency
  parsers, timestamp), with its minute cache emptied before each round, as a
  fresh worker starts.

Printed: µs of CPU per line, and each way's ratio to ``orjson.loads``.
Benchmarks report; tests check behaviour (tests/unit/test_fast_path.py).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _each(fn: Callable[[bytes], object]) -> Callable[[list[bytes]], None]:
    def run(lines: list[bytes]) -> None:
        for line in lines:
            with contextlib.suppress(Exception):  # a malformed line costs what it costs
                fn(line)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--file", type=Path, help="a JSON-lines file (else one is generated)")
    args = parser.parse_args()

    import orjson

    from attribution.stages import fast_path

    source = args.file
    if source is None:
        from bench_replay import generate_file

        source = Path(tempfile.mkdtemp(prefix="reelroi-fast-")) / "events.jsonl"
        generate_file(source, args.lines, 3, 0.01, True, 7)
    with source.open("rb") as handle:
        lines = [line.rstrip(b"\n") for line in itertools.islice(handle, args.lines)]
    if args.file is None:
        shutil.rmtree(source.parent, ignore_errors=True)

    def fast(batch: list[bytes]) -> None:
        fast_path._minutes.clear()
        for line in batch:
            fast_path.fast_decode(line)

    ways: dict[str, Callable[[list[bytes]], None]] = {
        "orjson.loads alone (the ceiling)": _each(orjson.loads),
        "msgspec decode into the structs alone": _each(fast_path._decode),
        "fast_decode (minutes cache emptied)": fast,
    }
    best = dict.fromkeys(ways, float("inf"))
    gc.disable()
    for _ in range(args.rounds):
        for name, way in ways.items():
            started = time.process_time()
            way(lines)
            best[name] = min(best[name], time.process_time() - started)
    gc.enable()
    decided = sum(fast_path.fast_decode(line) is not None for line in lines)
    ceiling = best["orjson.loads alone (the ceiling)"]
    print(
        f"{len(lines):,} lines of {source.name}, {decided:,} decided by the fast path; least of {args.rounds} rounds:"
    )
    for name, seconds in best.items():
        print(f"  {name:<40} {seconds / len(lines) * 1e6:5.2f} µs a line  ({seconds / ceiling:.2f}x orjson.loads)")


if __name__ == "__main__":
    main()
