"""What holding orjson's outputs costs, against the two ways replay and the stream now avoid it.

    .venv/bin/python load_tests/bench_orjson_held.py --rows 200000

orjson (3.12 on) returns bytes that keep their 4 KiB write buffer whatever
their length. Each way runs in a fresh process (so none reuses memory another
freed) over the same money rows (a replayed ad unlock's row, 146 bytes of JSON):

- **held**: a list of ``orjson.dumps`` outputs, joined at the end (replay's rows
  files and the stream's pending lines before session 7);
- **buffer**: each output appended to one bytearray as it is made (``_write_rows``);
- **copy**: each output sliced into bytes of its own size, then held (``facts.json_line``).

Printed: µs per row, the process's peak RSS above its start and minor page faults per row.
The plain ``orjson.dumps`` loop that keeps nothing is the ceiling.
Benchmarks report; tests check behaviour (tests/unit/test_replay_rows.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time

ROW = ("au-1473110", "ad_unlock", "u602956", "", 1762160854000000, 20395, "campaign", "gdt0009", 20394, "CNY",
       "0.0513", "1", "0.0513", "", "0", 0)  # fmt: skip


def _rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4


def child(way: str, rows: int) -> None:
    import orjson

    data = [(*ROW, n) for n in range(rows)]
    dumps, line = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    gc.disable()
    rss, faults = _rss_kb(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.perf_counter()
    kept: object = None
    if way == "ceiling":
        for row in data:
            dumps(row)
    elif way == "held":
        kept = b"\n".join([dumps(row) for row in data])  # the list is alive until the join ends
    elif way == "buffer":
        buffer = kept = bytearray()
        for row in data:
            buffer += dumps(row, option=line)
    else:
        kept = [dumps(row, option=line)[:-1] for row in data]
    seconds = time.perf_counter() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss  # the peak, in kB
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(json.dumps({"us": seconds / rows * 1e6, "mb": grown / 1024, "faults": faults / rows}))
    del data, kept


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    results = {}
    for way in ("ceiling", "held", "buffer", "copy"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", way, str(args.rows)], capture_output=True, check=True
        )
        results[way] = json.loads(out.stdout)
    ceiling = results["ceiling"]["us"]
    print(f"{args.rows:,} money rows, each way in a fresh process:")
    for way, r in results.items():
        print(f"  {way:<8} {r['us']:6.2f} µs a row ({r['us'] / ceiling:4.1f}x the ceiling)  peak RSS +{r['mb']:7.1f} MB  "
              f"{r['faults']:5.2f} page faults a row")  # fmt: skip


if __name__ == "__main__":
    main()
