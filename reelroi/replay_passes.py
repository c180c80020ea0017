"""Replay in bounded pieces: spill files, worker processes and the sink (the plan is attribution/stages/passes.py).

Pass 0 routes every input record once: the event log and structural
rejections go to the sink, every stage record (its wire line) to a spill
file of its topic and *shard* (``shard_of(route)``). Once the input is read,
its size is known, and the number of buckets ``K`` is chosen from it; a
bucket is the set of shards ``s`` with ``s % K == b``, so a key's bucket is
a function of its route alone, in every pass. Then each stage runs, in
dependency order, over one bucket at a time: its spilled records are read,
arranged, applied by a fresh stage, its emits spilled to the downstream
stage's buckets and its final facts written to a rows file that the parent
inserts (the embedded engine lives in the parent only).

With more than one worker (``REELROI_REPLAY_WORKERS``, default: every core),
batches of pass 0 and the buckets of a stage run in spawned worker processes;
the touch, order and spend stages depend only on the config stage, so their
buckets run side by side. A small input (one batch) runs in this process.

Files live in a temporary directory under ``REELROI_REPLAY_SPILL_DIR`` (else
$TMPDIR) and are removed at the end, on any failure and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import resource
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson

from attribution.errors import ConfigError, SinkError
from attribution.policy import Policy
from attribution.stages import facts as fact_wire
from attribution.stages.passes import PASSES, SHARDS, UPSTREAM, buckets_of
from reelroi.replay_codec import read_tsv_line
from reelroi.replay_tasks import (
    ODD_ROWS,
    TSV_KINDS,
    Done,
    Spill,
    close_kept,
    route_task,
    setup,
    stage_task,
    worker_setup,
)
from schemas.framing import LineBatch, LoggedBatch, Record
from sinks.connection import command
from sinks.rows import TABLES, TS
from sinks.writer import ClickHouseSink

# records, or lines framed where they are routed, or event-log records as two lists (schemas/framing.py)
Batch = list[Record] | LineBatch | LoggedBatch
Alive = Callable[[Iterator[tuple[str, "Done"]]], Iterator[tuple[str, "Done"]]]
PARALLEL_FROM = 10_000  # events: below, starting worker processes costs more than it saves
BUCKET_EVENTS = 80_000  # input events per bucket: what one stage pass holds (state and records) stays near 100 MB
ROUTE_BATCH = 10_000  # records per pass-0 task
IN_FLIGHT = 8  # pass-0 tasks per worker submitted ahead
# Rows per insert: the embedded engine's memory while it takes one grows with it (a 500k-row block of
# the event log held ~500 MB more than a 100k one), and it lives in this process.
FLUSH_ROWS = 100_000
# Rows files per insert, at most: their names go into the query (a long history with few rows of a kind,
# rejections say, would otherwise name every task's file in one insert, past the engine's query size limit)
FLUSH_FILES = 256


@dataclass
class PassStats:
    """What a bucketed replay did, and where its time went (seconds, by part)."""

    records: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    rows_written: int = 0
    buckets: int = 0
    workers: int = 1
    peak_task_mb: float = 0.0  # the largest process's peak while it ran a task (the parent's when no workers)
    timings: dict[str, float] = field(default_factory=dict)

    def add_time(self, part: str, seconds: float) -> None:
        self.timings[part] = self.timings.get(part, 0.0) + seconds


def workers_wanted() -> int:
    value = os.environ.get("REELROI_REPLAY_WORKERS")
    if value:
        return max(1, int(value))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def bucket_events() -> int:
    """Events per bucket (``REELROI_REPLAY_BUCKET_EVENTS``; tests force tiny buckets with it)."""
    return max(1, int(os.environ.get("REELROI_REPLAY_BUCKET_EVENTS", BUCKET_EVENTS)))


def choose_buckets(events: int, per_bucket: int, workers: int) -> int:
    """Enough buckets for ``per_bucket`` events each, and at least one per worker when there is work to share."""
    wanted = math.ceil(events / per_bucket) if events else 1
    if workers > 1 and events > per_bucket // 4:
        wanted = max(wanted, workers)
    return max(1, min(SHARDS, wanted))


# --------------------------------------------------------------------------- the parent


class Inserter:
    """Writes rows files into the sink's tables, in large inserts: by the engine's own file reader when embedded.

    Rows files of several tasks are held (in the order they come) per table until
    they hold ``FLUSH_ROWS`` rows (or number ``FLUSH_FILES``), then inserted
    together: one insert, one part, and no copy of them made first.
    """

    def __init__(self, sink: ClickHouseSink) -> None:
        self.sink = sink
        self.embedded = type(sink.client).__name__ == "ChdbClient"
        self.rows = 0
        self.seconds = 0.0
        self.cpu: dict[str, float] = {}  # per table, this process's CPU (the engine's threads included) in inserts
        self._held: dict[str, int] = {}
        self._files: dict[str, list[str]] = {}

    def insert(self, rows: list[tuple[str, str, int]]) -> None:
        started = time.perf_counter()
        for kind, path, count in rows:
            if kind == ODD_ROWS:
                with open(path, "rb") as handle:
                    self.rows += self.sink.write_facts(fact_wire.decode(line.rstrip(b"\n")) for line in handle)
            elif kind != "event" or self.sink.log_events:
                self._files.setdefault(kind, []).append(path)
                self._held[kind] = self._held.get(kind, 0) + count
                if self._held[kind] >= FLUSH_ROWS or len(self._files[kind]) >= FLUSH_FILES:
                    self._flush(kind)
                continue
            os.unlink(path)
        self.seconds += time.perf_counter() - started

    def flush(self) -> None:
        started = time.perf_counter()
        for kind in list(TABLES):  # the event log last, as the sink writes it
            if self._held.get(kind):
                self._flush(kind)
        self.seconds += time.perf_counter() - started

    def _flush(self, kind: str) -> None:
        paths, rows = self._files.pop(kind), self._held.pop(kind)
        started = _process_cpu()
        self._insert_files(kind, paths)
        self.cpu[kind] = self.cpu.get(kind, 0.0) + _process_cpu() - started
        self.rows += rows
        for path in paths:
            os.unlink(path)
        if self.embedded:
            # the engine's allocator keeps what an insert freed; hand it back, or the parent's RSS
            # ratchets up by a block's worth with every table
            with contextlib.suppress(SinkError):
                command(self.sink.client, "SYSTEM JEMALLOC PURGE")

    def _insert_files(self, kind: str, paths: list[str]) -> None:
        table = TABLES[kind]
        spec = [*table.spec, ("version", "UInt64")]
        target = self.sink.table(table.name)
        tsv = kind in TSV_KINDS
        if self.embedded:
            columns = ", ".join(f"`{c}`" for c, _ in spec)
            structure = ", ".join(f"`{c}` {'Int64' if t == TS else t}" for c, t in spec)
            select = ", ".join(f"fromUnixTimestamp64Micro(`{c}`, 'UTC')" if t == TS else f"`{c}`" for c, t in spec)
            path = _one_path(paths)
            quoted = path.replace("\\", "\\\\").replace("'", "\\'")
            command(
                self.sink.client,
                f"INSERT INTO {target} ({columns}) SELECT {select} "
                f"FROM file('{quoted}', '{'TabSeparated' if tsv else 'JSONCompactEachRow'}', '{structure}') "
                # parsing in threads only adds work on a machine whose cores the workers already use
                # (a third less CPU per row measured on 2 cores); no dedup of a key's rows within the
                # insert (every reader reads these tables FINAL, which keeps the greatest version anyway):
                # half the engine's CPU per event-log row
                "SETTINGS input_format_parallel_parsing = 0, optimize_on_insert = 0",
            )
            return
        rows: list[Any] = []
        for path in paths:
            with open(path, "rb") as handle:
                rows.extend(_typed(read_tsv_line(line), spec) if tsv else orjson.loads(line) for line in handle)
        data = [list(col) for col in zip(*rows, strict=True)]
        self.sink.client.insert(
            target, data, column_names=[c for c, _ in spec], column_type_names=[t for _, t in spec],
            column_oriented=True, settings={"optimize_on_insert": 0},
        )  # fmt: skip


def _one_path(paths: list[str]) -> str:
    """Files of one directory as one path for the engine's file(): the directory, then their names in braces.

    A file missing from a list in braces is skipped without an error (one named alone is an error), so each is
    checked here: rows counted as written are never silently not read.
    """
    folder = os.path.dirname(paths[0])
    names = [os.path.basename(path) for path in paths]
    for path, name in zip(paths, names, strict=True):
        if os.path.dirname(path) != folder or _GLOB.search(name):
            raise RuntimeError(f"rows file {path!r} cannot be named in a list of files for the engine")
        if not os.path.isfile(path):
            raise SinkError(f"rows file {path!r} is gone before its insert")
    return os.path.join(folder, names[0] if len(names) == 1 else "{" + ",".join(names) + "}")


def _typed(fields: list[bytes | None], spec: list[tuple[str, str]]) -> list[Any]:
    """A TabSeparated row's fields as the server insert takes them: bytes for strings, integers for the rest."""
    return [f if f is None or t == "String" else int(f) for f, (_, t) in zip(fields, spec, strict=True)]


# what ClickHouse's file() expands in a path (it has no escape for them), and the comma, which a list of
# files in braces cannot hold in its directory ("Unexpected ',' found in path")
_GLOB = re.compile(r"[*?{}\[\],]")


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process: the engine's too
    return usage.ru_utime + usage.ru_stime


def spill_root() -> Path:
    """A fresh private directory for one replay's files (``REELROI_REPLAY_SPILL_DIR``, else $TMPDIR)."""
    base = os.environ.get("REELROI_REPLAY_SPILL_DIR") or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="reelroi-replay-", dir=base))
    if _GLOB.search(str(root)):
        # the embedded engine reads the rows files by path, and would expand these into no file at all:
        # an empty replay, reported as a success
        root.rmdir()
        where = "REELROI_REPLAY_SPILL_DIR" if base else "TMPDIR"
        raise ConfigError(
            f"replay's spill directory {str(root.parent)!r} ({where}) holds one of * ? {{ }} [ ] or a comma, which ClickHouse's "
            "file() reads as a pattern: choose another directory"
        )
    return root


class _Runner:
    """Runs tasks here (one worker) or in a pool of spawned processes, started on first need."""

    def __init__(self, workers: int, init: tuple[Any, ...]) -> None:
        self.workers = workers
        self._init = init
        self.pool: ProcessPoolExecutor | None = None
        setup(*init)

    def start(self) -> None:
        if self.pool is None and self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=worker_setup,
                                            initargs=self._init)  # fmt: skip

    def submit(self, fn: Callable[..., Done], *args: Any) -> Future[Done]:
        if self.pool is None:
            future: Future[Done] = Future()
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            return future
        return self.pool.submit(fn, *args)

    def close(self, failed: bool) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=failed)
            self.pool = None


def run_passes(
    sink: ClickHouseSink,
    policy: Policy,
    batches: Iterable[Batch],
    advance: Callable[[int], None] = lambda n: None,
    workers: int | None = None,
    per_bucket: int | None = None,
    alive: Alive = iter,
) -> PassStats:
    """Replay ``batches`` into ``sink`` in bounded pieces; the spill directory is gone when this returns or raises.

    ``alive`` passes the stage results through (a build's heartbeat, sinks/builds.py).
    """
    stats = PassStats(workers=workers or workers_wanted())
    thresholds = gc.get_threshold()
    root = spill_root()
    Spill(root).make()
    runner = _Runner(stats.workers, (policy, str(root), sink.log_events))
    inserter = Inserter(sink)
    failed = True
    try:
        started = time.perf_counter()
        _pass0(runner, inserter, batches, stats, advance)
        stats.add_time("pass 0 (read, decode, route, spill)", time.perf_counter() - started)
        close_kept()  # this process's, when it routed a batch itself
        stats.buckets = choose_buckets(stats.events, per_bucket or bucket_events(), stats.workers)
        if stats.buckets > 1 and stats.events >= PARALLEL_FROM:
            runner.start()  # buckets side by side (a pass 0 of one batch ran here)
        _stage_passes(runner, inserter, stats, alive)
        failed = False
    finally:
        runner.close(failed)
        close_kept()
        shutil.rmtree(root, ignore_errors=True)
        gc.set_threshold(*thresholds)
    stats.rows_written = inserter.rows
    stats.add_time("sink inserts (in the parent)", inserter.seconds)
    for kind, seconds in sorted(inserter.cpu.items(), key=lambda item: -item[1]):
        stats.add_time(f"  {TABLES[kind].name} inserts (parent CPU, the engine's threads too)", seconds)
    return stats


def _pass0(
    runner: _Runner, inserter: Inserter, batches: Iterable[Batch], stats: PassStats,
    advance: Callable[[int], None],
) -> None:  # fmt: skip
    """Route every batch (in workers once there is more than one batch); insert their rows in input order."""
    window: deque[Future[Done]] = deque()
    iterator: Iterator[Batch] = iter(batches)
    first = next(iterator, None)
    if first is None:
        return
    following = next(iterator, None)
    if following is not None:
        runner.start()

    def finish(future: Future[Done]) -> None:
        done = future.result()
        inserter.insert(done.rows)
        stats.records += done.records
        stats.events += done.events
        stats.rejected += done.rejected
        stats.add_time("  routing tasks (wall, summed over workers)", done.seconds)
        stats.add_time("  routing tasks (cpu, summed over workers)", done.cpu)
        stats.peak_task_mb = max(stats.peak_task_mb, done.peak_mb)
        advance(done.records)

    index = 0
    for batch in _chain(first, following, iterator):
        for start in range(0, len(batch), ROUTE_BATCH):  # small tasks: less held per worker, even sharing
            part = (
                batch.part(start, start + ROUTE_BATCH)
                if isinstance(batch, (LineBatch, LoggedBatch))
                else batch[start : start + ROUTE_BATCH]
            )
            window.append(runner.submit(route_task, index, part))
            index += 1
            # bounded: a few tasks per worker in flight (a task is ~2 MB), enough to keep the workers busy while
            # this process inserts a block of rows
            while len(window) > IN_FLIGHT * runner.workers:
                finish(window.popleft())
    while window:
        finish(window.popleft())


def _nothing() -> None:
    pass


def _chain(first: Batch, following: Batch | None, rest: Iterator[Batch]) -> Iterator[Batch]:
    yield first
    if following is not None:
        yield following
        yield from rest


def _stage_passes(runner: _Runner, inserter: Inserter, stats: PassStats, alive: Alive) -> None:
    """Every stage over every bucket, each stage once its upstream stages are done; rows inserted as they come."""
    started = time.perf_counter()
    # what pass 0 left below a full insert goes in while the first wave of buckets runs, not before it
    for topic, done in alive(_stage_results(runner, stats.buckets, inserter.flush)):
        inserter.insert(done.rows)
        stats.duplicates += done.duplicates
        stats.peak_task_mb = max(stats.peak_task_mb, done.peak_mb)
        stage = topic.removeprefix("stage.")
        stats.add_time(f"  {stage} buckets (wall, summed over workers)", done.seconds)
        stats.add_time(f"  {stage} buckets (cpu, summed over workers)", done.cpu)
    inserter.flush()
    stats.events -= stats.duplicates
    stats.add_time("stage passes", time.perf_counter() - started)


def _stage_results(runner: _Runner, buckets: int, meanwhile: Callable[[], None]) -> Iterator[tuple[str, Done]]:
    """Each stage's results as they come (submitted once its upstream stages are done); ``meanwhile`` is called
    once, after the first submissions of more than one task (the workers busy), before waiting on any."""
    pending: dict[str, int] = {}
    running: deque[tuple[str, Future[Done]]] = deque()
    finished: set[str] = set()
    queue = list(PASSES)
    while queue or running:
        for topic in [t for t in queue if all(u in finished for u in UPSTREAM[t])]:
            queue.remove(topic)
            pending[topic] = buckets_of(topic, buckets)
            for bucket in range(pending[topic]):
                running.append((topic, runner.submit(stage_task, topic, bucket, buckets)))
        if len(running) > 1 or not queue:
            meanwhile()
            meanwhile = _nothing
        if not running:  # pragma: no cover - PASSES is in dependency order
            raise RuntimeError(f"stage passes cannot be ordered: {queue}")
        topic, future = running.popleft()
        yield topic, future.result()
        pending[topic] -= 1
        if pending[topic] == 0:
            finished.add(topic)
