"""Where a replay's CPU goes, part by part, per input line: ``bench_replay.py --parts``.

One process, collector off as in the workers' tasks, over the first
``--parts-lines`` lines of the benchmark's file (the share one worker takes):
pass 0 split into its parts (framing; the router with its fast path, filing
records by shard and making event-log rows as it goes; pickling records to
spill files; writing the rows files),
then every stage over the spilled buckets (read and arrange, apply, write its
rows), and the orjson-plus-dict ceiling over the same lines in the same run.
Benchmarks report; tests check behaviour.
"""

from __future__ import annotations

import gc
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _cpu() -> float:
    return time.process_time()


def parts(source: Path, lines: int) -> None:
    from attribution.policy import Policy
    from attribution.stages.fast_path import fast_decode
    from attribution.stages.passes import PASSES, buckets_of
    from reelroi import replay_tasks as tasks
    from reelroi.sources_io import read_batches
    from schemas.framing import LineBatch

    work = Path(tempfile.mkdtemp(prefix="reelroi-parts-"))
    head = work / "head.jsonl"
    with source.open("rb") as src, head.open("wb") as out:
        out.writelines(itertools.islice(src, lines))
    spill = tasks.Spill(work / "spill")
    spill.make()
    tasks.setup(Policy(), str(spill.root), True)
    router = tasks._context["router"]
    took: dict[str, float] = {}

    def timed(part: str, fn: Callable[[], Any]) -> Any:
        started = _cpu()
        result = fn()
        took[part] = took.get(part, 0.0) + _cpu() - started
        return result

    def timed_apart(fn: Callable[[], Any]) -> float:
        started = _cpu()
        fn()
        return _cpu() - started

    gc.disable()
    count = 0
    fast_alone = 0.0
    try:
        for index, batch in enumerate(read_batches([str(head)], 10_000)):
            records = timed("pass 0: frame lines", lambda b=batch: b.records() if isinstance(b, LineBatch) else b)
            count += len(records)
            out = tasks._Filed(index << 24, True)
            facts, _ = timed(
                "pass 0: route, file by shard, event-log rows", lambda r=records, o=out: router.route(r, o)
            )
            fast_alone += timed_apart(lambda r=records: [fast_decode(record.raw) for record in r])

            def spill_all(filed: Any = out, order: int = index + 1) -> None:
                for topic, shard, emitted in filed.places():
                    tasks._spill_kept(spill, topic, shard, "p", emitted, order)
                tasks._flush_kept()

            timed("pass 0: pickle to spill files", spill_all)
            timed(
                "pass 0: write rows files",
                lambda f=facts, i=index, o=out: tasks._write_rows(spill, f"r{i}", f, o.rows),
            )
        tasks.close_kept()
        buckets = 2
        for topic in PASSES:
            for bucket in range(buckets_of(topic, buckets)):
                done = tasks.stage_task(topic, bucket, buckets)
                took[f"stage {topic.removeprefix('stage.')}"] = (
                    took.get(f"stage {topic.removeprefix('stage.')}", 0.0) + done.cpu
                )
    finally:
        gc.enable()
        tasks.close_kept()
    from bench_replay import plain_pass

    ceiling = plain_pass(head) / count * 1e6
    shutil.rmtree(work, ignore_errors=True)
    total = sum(took.values()) / count * 1e6
    print(f"\nCPU per input line, one process, {count:,} lines of {source.name}:")
    for part, seconds in took.items():
        print(f"  {part:<45} {seconds / count * 1e6:6.2f} µs")
    print(f"  {'all parts':<45} {total:6.2f} µs")
    print(f"  {'(the fast path alone, again, its minutes cached)':<45} {fast_alone / count * 1e6:6.2f} µs")
    print(f"  {'orjson + dict (the ceiling)':<45} {ceiling:6.2f} µs  ({ceiling / total:.3f} of all parts)")
