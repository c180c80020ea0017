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
import ctypes
import ctypes.util
import gc
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from attribution.errors import SinkError
from attribution.outputs import EVENT_ID_DUPLICATE
from attribution.policy import Policy
from attribution.stages import facts as fact_wire
from attribution.stages import wire
from attribution.stages.facts import Fact
from attribution.stages.passes import PASSES, SHARDS, UPSTREAM, BucketPass, arrange, buckets_of, shard_of
from attribution.stages.records import BROADCAST, Emit, StageRecord
from attribution.stages.router import Router
from schemas.framing import Record
from sinks.connection import command
from sinks.rows import TABLES, TS
from sinks.writer import ClickHouseSink

Alive = Callable[[Iterator[tuple[str, "Done"]]], Iterator[tuple[str, "Done"]]]
PARALLEL_FROM = 10_000  # events: below, starting worker processes costs more than it saves
BUCKET_EVENTS = 80_000  # input events per bucket: what one stage pass holds (state and records) stays near 100 MB
ROUTE_BATCH = 10_000  # records per pass-0 task
# Rows per insert: the embedded engine's memory while it takes one grows with it (a 500k-row block of
# the event log held ~500 MB more than a 100k one), and it lives in this process.
FLUSH_ROWS = 100_000
_ODD = "facts"  # rows that JSON cannot carry (bytes that are not UTF-8): sent as fact lines, written natively


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


# --------------------------------------------------------------------------- files


class Spill:
    """The directory tree of one replay's spilled records and rows files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def shard_file(self, topic: str, shard: int, producer: str) -> Path:
        return self.root / "in" / topic / f"s{shard}" / f"{producer}.lines"

    def bucket_file(self, topic: str, bucket: int, producer: str) -> Path:
        return self.root / "in" / topic / f"b{bucket}" / f"{producer}.lines"

    def broadcast_file(self, topic: str, producer: str) -> Path:
        return self.root / "in" / topic / "all" / f"{producer}.lines"

    def inputs(self, topic: str, bucket: int, buckets: int) -> list[Path]:
        """Every file holding records of (topic, bucket): broadcasts, its shards' and its own, in a fixed order."""
        base = self.root / "in" / topic
        if not base.exists():
            return []
        dirs = [base / "all"]
        dirs += sorted((p for p in base.glob("s*") if int(p.name[1:]) % buckets == bucket), key=lambda p: p.name)
        dirs.append(base / f"b{bucket}")
        return [f for d in dirs if d.is_dir() for f in sorted(d.iterdir())]

    def make(self, buckets: int | None = None) -> None:
        """Create every directory files go to: shards and broadcasts, or with ``buckets``, the buckets."""
        (self.root / "rows").mkdir(parents=True, exist_ok=True)
        for topic in PASSES:
            base = self.root / "in" / topic
            names = ["all", *(f"s{s}" for s in range(SHARDS))] if buckets is None else [f"b{b}" for b in range(buckets)]
            for name in names:
                (base / name).mkdir(parents=True, exist_ok=True)

    def rows_file(self, producer: str, table: str) -> Path:
        return self.root / "rows" / f"{producer}.{table}.jsonl"


@dataclass
class Done:
    """What one task (a batch of pass 0, or one stage over one bucket) left for the parent."""

    rows: list[tuple[str, str, int]]  # (fact kind, rows file, rows), to insert in this order
    records: int = 0
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # of which the task's process ran (a busy machine makes ``seconds`` longer, not this)
    keys: int = 0
    peak_mb: float = 0.0  # the process's peak resident memory so far


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _append(path: Path, lines: list[bytes]) -> None:
    """Append ``lines`` to a file whose directory exists (``Spill.make``)."""
    with open(path, "ab") as handle:
        handle.write(b"\n".join(lines))
        handle.write(b"\n")


_open: dict[Path, BinaryIO] = {}  # pass 0's spill files, kept open by the process writing them


def _append_kept(path: Path, lines: list[bytes]) -> None:
    """``_append`` to a file this process keeps open (flushed by ``_flush_kept`` before a task returns)."""
    handle = _open.get(path)
    if handle is None:
        handle = _open[path] = open(path, "ab")  # noqa: SIM115 - closed by close_kept
    handle.write(b"\n".join(lines))
    handle.write(b"\n")


def _flush_kept() -> None:
    for handle in _open.values():
        handle.flush()


def close_kept() -> None:
    while _open:
        _open.popitem()[1].close()


def _write_rows(spill: Spill, producer: str, facts: Iterable[Fact], log_events: bool) -> list[tuple[str, str, int]]:
    """Facts as JSON rows of their tables (the columns of sinks/rows.py, then the version), one file per kind."""
    by_kind: dict[str, list[bytes]] = {}
    odd: list[bytes] = []
    for fact in facts:
        if fact.kind == "event" and not log_events:
            continue
        table = TABLES[fact.kind]
        row = (table.row or tuple)(fact.row)
        try:
            values = [v.decode("utf-8") if type(v) is bytes else v for v in row]
        except UnicodeDecodeError:
            odd.append(fact_wire.encode(fact))
            continue
        values.append(fact.version)
        by_kind.setdefault(fact.kind, []).append(orjson.dumps(values))
    out = []
    for kind in TABLES:  # the event log last, as the sink writes it
        lines = by_kind.get(kind)
        if lines:
            path = spill.rows_file(producer, kind)
            _append(path, lines)
            out.append((kind, str(path), len(lines)))
    if odd:
        path = spill.rows_file(producer, _ODD)
        _append(path, odd)
        out.insert(0, (_ODD, str(path), len(odd)))
    return out


# --------------------------------------------------------------------------- tasks (run in workers or here)

_context: dict[str, Any] = {}


def setup(policy: Policy, root: str, log_events: bool) -> None:
    """Worker initializer (and the parent's, when it runs tasks itself)."""
    close_kept()
    _context.update(policy=policy, spill=Spill(Path(root)), log_events=log_events, router=Router(policy))
    # The stages allocate millions of small acyclic objects and keep most of them for the
    # length of a task: the collector would rescan them constantly (load_tests/bench_replay.py).
    gc.set_threshold(200_000, 50, 1000)


def worker_setup(policy: Policy, root: str, log_events: bool) -> None:
    """A pool worker's initializer: it dies with the replay (kill -9 of the parent left workers running), then ``setup``."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    setup(policy, root, log_events)


def route_task(index: int, records: list[Record]) -> Done:
    """Pass 0 over one batch: the event log and rejections to a rows file, stage records to their shards."""
    started, cpu = time.perf_counter(), time.process_time()
    gc.disable()  # a batch's objects are acyclic and gone at its end: no collector passes over them
    try:
        return _route(index, records, started, cpu)
    finally:
        gc.enable()


def _route(index: int, records: list[Record], started: float, cpu: float) -> Done:
    spill: Spill = _context["spill"]
    router: Router = _context["router"]
    facts, emits = router.route(records)
    by_place = _file_emits(emits, None)
    del emits
    producer = f"r{os.getpid()}"
    for (topic, shard), lines in by_place.items():
        path = spill.broadcast_file(topic, producer) if shard < 0 else spill.shard_file(topic, shard, producer)
        _append_kept(path, lines)
    _flush_kept()  # the stage passes read these files from other processes
    events = sum(1 for f in facts if f.kind == "event")
    rejected = len(facts) - events
    rows = _write_rows(spill, f"r{index}", facts, _context["log_events"])
    seconds, used = time.perf_counter() - started, time.process_time() - cpu
    return Done(rows, len(records), events, rejected, seconds=seconds, cpu=used, peak_mb=_peak_mb())


def _file_emits(emits: list[Emit], buckets: int | None) -> dict[tuple[str, int], list[bytes]]:
    """Wire lines by (topic, place): its shard (pass 0, before K is known) or its bucket; -1 for a broadcast."""
    out: dict[tuple[str, int], list[bytes]] = {}
    encode = wire.encode
    for emit in emits:
        topic = emit.topic
        if topic not in UPSTREAM:
            continue  # no pass reads it: postbacks are not decided by a replay (attribution/stages/local.py)
        if emit.partition == BROADCAST:
            place = -1
        else:
            place = shard_of(emit.record.route)
            if buckets is not None:
                place %= buckets_of(topic, buckets)
        lines = out.get((topic, place))
        if lines is None:
            lines = out[(topic, place)] = []
        lines.append(encode(emit.record))
    return out


def stage_task(topic: str, bucket: int, buckets: int) -> Done:
    """One fresh stage over one bucket: read, arrange, apply; emits spilled downstream, final facts to rows files."""
    started, cpu = time.perf_counter(), time.process_time()
    spill: Spill = _context["spill"]
    n = buckets_of(topic, buckets)
    records: list[StageRecord] = []
    for path in spill.inputs(topic, bucket, n):
        with path.open("rb") as handle:
            records.extend(wire.decode(line) for line in handle)
    gc.disable()  # everything built here lives until the task ends, and none of it is cyclic
    try:
        runner = BucketPass(topic, _context["policy"])
        producer = f"{topic}-{bucket}"
        for emits in runner.run(arrange(records)):
            for (target, place), lines in _file_emits(emits, buckets).items():
                path = (
                    spill.broadcast_file(target, producer) if place < 0 else spill.bucket_file(target, place, producer)
                )
                _append(path, lines)
        del records
        facts = runner.facts()
        keys = runner.keys()
        del runner
        duplicates = sum(
            1 for f in facts if f.kind == "duplicate" and f.row.kind == EVENT_ID_DUPLICATE and f.row.active
        )
        rows = _write_rows(spill, producer, facts, True)
        del facts
    finally:
        gc.enable()
    return Done(
        rows,
        duplicates=duplicates,
        seconds=time.perf_counter() - started,
        cpu=time.process_time() - cpu,
        keys=keys,
        peak_mb=_peak_mb(),
    )


# --------------------------------------------------------------------------- the parent


class Inserter:
    """Writes rows files into the sink's tables, in large inserts: by the engine's own file reader when embedded.

    Rows files of several tasks are concatenated (in the order they come) into
    one file per table until it holds ``FLUSH_ROWS`` rows: one insert, one part.
    """

    def __init__(self, sink: ClickHouseSink, root: Path) -> None:
        self.sink = sink
        self.embedded = type(sink.client).__name__ == "ChdbClient"
        self.root = root / "rows"
        self.rows = 0
        self.seconds = 0.0
        self._held: dict[str, int] = {}

    def insert(self, rows: list[tuple[str, str, int]]) -> None:
        started = time.perf_counter()
        for kind, path, count in rows:
            if kind == _ODD:
                with open(path, "rb") as handle:
                    self.rows += self.sink.write_facts(fact_wire.decode(line.rstrip(b"\n")) for line in handle)
            elif kind != "event" or self.sink.log_events:
                with open(path, "rb") as source, open(self._pending(kind), "ab") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                self._held[kind] = self._held.get(kind, 0) + count
                if self._held[kind] >= FLUSH_ROWS:
                    self._flush(kind)
            os.unlink(path)
        self.seconds += time.perf_counter() - started

    def flush(self) -> None:
        started = time.perf_counter()
        for kind in list(TABLES):  # the event log last, as the sink writes it
            if self._held.get(kind):
                self._flush(kind)
        self.seconds += time.perf_counter() - started

    def _pending(self, kind: str) -> Path:
        return self.root / f"pending.{kind}.jsonl"

    def _flush(self, kind: str) -> None:
        path = self._pending(kind)
        self._insert_file(kind, str(path))
        self.rows += self._held.pop(kind)
        path.unlink()
        if self.embedded:
            # the engine's allocator keeps what an insert freed; hand it back, or the parent's RSS
            # ratchets up by a block's worth with every table
            with contextlib.suppress(SinkError):
                command(self.sink.client, "SYSTEM JEMALLOC PURGE")

    def _insert_file(self, kind: str, path: str) -> None:
        table = TABLES[kind]
        spec = [*table.spec, ("version", "UInt64")]
        target = self.sink.table(table.name)
        if self.embedded:
            columns = ", ".join(f"`{c}`" for c, _ in spec)
            structure = ", ".join(f"`{c}` {'Int64' if t == TS else t}" for c, t in spec)
            select = ", ".join(f"fromUnixTimestamp64Micro(`{c}`, 'UTC')" if t == TS else f"`{c}`" for c, t in spec)
            quoted = path.replace("\\", "\\\\").replace("'", "\\'")
            command(
                self.sink.client,
                f"INSERT INTO {target} ({columns}) SELECT {select} "
                f"FROM file('{quoted}', 'JSONCompactEachRow', '{structure}')",
            )
            return
        with open(path, "rb") as handle:
            rows = [orjson.loads(line) for line in handle]
        data = [list(col) for col in zip(*rows, strict=True)]
        self.sink.client.insert(
            target, data, column_names=[c for c, _ in spec], column_type_names=[t for _, t in spec],
            column_oriented=True,
        )  # fmt: skip


def spill_root() -> Path:
    base = os.environ.get("REELROI_REPLAY_SPILL_DIR") or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="reelroi-replay-", dir=base))


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
    batches: Iterable[list[Record]],
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
    inserter = Inserter(sink, root)
    failed = True
    try:
        started = time.perf_counter()
        _pass0(runner, inserter, batches, stats, advance)
        inserter.flush()
        stats.add_time("pass 0 (read, decode, route, spill)", time.perf_counter() - started)
        close_kept()  # this process's, when it routed a batch itself
        stats.buckets = choose_buckets(stats.events, per_bucket or bucket_events(), stats.workers)
        Spill(root).make(stats.buckets)
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
    return stats


def _pass0(
    runner: _Runner, inserter: Inserter, batches: Iterable[list[Record]], stats: PassStats,
    advance: Callable[[int], None],
) -> None:  # fmt: skip
    """Route every batch (in workers once there is more than one batch); insert their rows in input order."""
    window: deque[Future[Done]] = deque()
    iterator: Iterator[list[Record]] = iter(batches)
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
            window.append(runner.submit(route_task, index, batch[start : start + ROUTE_BATCH]))
            index += 1
            while len(window) > 2 * runner.workers:  # bounded: two tasks per worker in flight
                finish(window.popleft())
    while window:
        finish(window.popleft())


def _chain(first: list[Record], following: list[Record] | None, rest: Iterator[list[Record]]) -> Iterator[list[Record]]:
    yield first
    if following is not None:
        yield following
        yield from rest


def _stage_passes(runner: _Runner, inserter: Inserter, stats: PassStats, alive: Alive) -> None:
    """Every stage over every bucket, each stage once its upstream stages are done; rows inserted as they come."""
    started = time.perf_counter()
    for topic, done in alive(_stage_results(runner, stats.buckets)):
        inserter.insert(done.rows)
        stats.duplicates += done.duplicates
        stats.peak_task_mb = max(stats.peak_task_mb, done.peak_mb)
        stage = topic.removeprefix("stage.")
        stats.add_time(f"  {stage} buckets (wall, summed over workers)", done.seconds)
        stats.add_time(f"  {stage} buckets (cpu, summed over workers)", done.cpu)
    inserter.flush()
    stats.events -= stats.duplicates
    stats.add_time("stage passes", time.perf_counter() - started)


def _stage_results(runner: _Runner, buckets: int) -> Iterator[tuple[str, Done]]:
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
        if not running:  # pragma: no cover - PASSES is in dependency order
            raise RuntimeError(f"stage passes cannot be ordered: {queue}")
        topic, future = running.popleft()
        yield topic, future.result()
        pending[topic] -= 1
        if pending[topic] == 0:
            finished.add(topic)
