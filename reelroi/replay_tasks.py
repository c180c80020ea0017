"""The half of replay's passes that runs in worker processes: spill files, rows files, pass 0 and stage tasks.

reelroi/replay_passes.py drives them (and runs them itself for small inputs);
the plan (buckets, shards, arrangement) is attribution/stages/passes.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import pickle
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from zlib import crc32

import orjson

from attribution.outputs import EVENT_ID_DUPLICATE
from attribution.policy import Policy
from attribution.stages import facts as fact_wire
from attribution.stages.facts import Fact
from attribution.stages.passes import PASSES, SHARDS, UPSTREAM, BucketPass, buckets_of, shard_of
from attribution.stages.records import BROADCAST, Emit, StageRecord
from attribution.stages.router import Router
from reelroi.replay_codec import dump_records, event_line, load_frames, tsv_line
from schemas.framing import LineBatch, LoggedBatch, Record
from sinks.rows import TABLES

ODD_ROWS = "facts"  # rows that JSON cannot carry (bytes that are not UTF-8): sent as fact lines, written natively
TSV_KINDS = frozenset(("event", "rejection"))  # rows carrying raw input bytes: TabSeparated (reelroi/replay_codec.py)


@dataclass
# --------------------------------------------------------------------------- files


class Spill:
    """The directory tree of one replay's spilled records and rows files.

    One directory per topic, its files named by place (``all`` for broadcasts, ``s<shard>`` from pass 0,
    ``b<bucket>`` from the stage passes) and producer: a directory per place cost ~1,400 mkdir and rmdir
    calls a replay, on the critical path (before pass 0, between the passes, at the end).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)  # a str hashes once; a Path's hash is Python code

    def shard_file(self, topic: str, shard: int, producer: str) -> Path:
        return self.root / "in" / topic / f"s{shard}.{producer}.lines"

    def bucket_file(self, topic: str, bucket: int, producer: str) -> Path:
        return self.root / "in" / topic / f"b{bucket}.{producer}.lines"

    def broadcast_file(self, topic: str, producer: str) -> Path:
        return self.root / "in" / topic / f"all.{producer}.lines"

    def inputs(self, topic: str, bucket: int, buckets: int) -> list[Path]:
        """Every file holding records of (topic, bucket): broadcasts, its shards' and its own, in a fixed order."""
        base = self.root / "in" / topic
        if not base.exists():
            return []
        places: dict[str, list[str]] = {}
        for name in os.listdir(base):
            places.setdefault(name.split(".", 1)[0], []).append(name)
        ordered = ["all"]
        ordered += sorted(p for p in places if p[0] == "s" and int(p[1:]) % buckets == bucket)
        ordered.append(f"b{bucket}")
        return [base / name for place in ordered for name in sorted(places.get(place, ()))]

    def make(self) -> None:
        """Create every directory files go to, in pass 0 and in the stage passes."""
        (self.root / "rows").mkdir(parents=True, exist_ok=True)
        for topic in PASSES:
            (self.root / "in" / topic).mkdir(parents=True, exist_ok=True)

    def rows_file(self, producer: str, table: str, tsv: bool = False) -> Path:
        return self.root / "rows" / f"{producer}.{table}.{'tsv' if tsv else 'jsonl'}"


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


def _append(path: Path, *parts: bytes | bytearray) -> None:
    """Append ``parts`` (together, whole lines) to a file whose directory exists (``Spill.make``)."""
    with open(path, "ab") as handle:
        handle.writelines(parts)


def _spill(path: Path, records: list[StageRecord]) -> None:
    """Append a frame of ``records`` to a spill file."""
    with open(path, "ab") as handle:
        dump_records(records, handle)


# pass 0's spill files, kept open by the process writing them, by (spill root, topic, shard or -1, producer): a
# place's Path is made once (three joins and a hash of a Path per frame were a third of pickling the records)
_open: dict[tuple[str, str, int, str], BinaryIO] = {}


def _spill_kept(spill: Spill, topic: str, shard: int, producer: str, records: list[StageRecord], order: int) -> None:
    """``_spill`` to the file of (topic, shard or -1 for a broadcast, producer), which this process keeps open
    (flushed by ``_flush_kept`` before a task returns)."""
    place = (spill.name, topic, shard, producer)
    handle = _open.get(place)
    if handle is None:
        path = spill.broadcast_file(topic, producer) if shard < 0 else spill.shard_file(topic, shard, producer)
        handle = _open[place] = open(path, "ab")  # noqa: SIM115 - closed by close_kept
    dump_records(records, handle, order)


def _flush_kept() -> None:
    for handle in _open.values():
        handle.flush()


def close_kept() -> None:
    while _open:
        _open.popitem()[1].close()


# Fact kinds whose rows never hold bytes (sinks/rows.py), by their row function
_PLAIN: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    kind: row for kind in ("user", "money", "duplicate", "spend") if (row := TABLES[kind].row) is not None
}
FIRST_LINE_VERSION = 1 << 62  # an event-log row's version in a replay: this, less the line's place in the input


def _write_rows(
    spill: Spill, producer: str, facts: Iterable[Fact], events: list[bytes] | None = None
) -> list[tuple[str, str, int]]:
    """Facts as rows of their tables (the columns of sinks/rows.py, then the version), one file per kind.

    ``events``: event-log rows already made (pass 0's, ``_Filed``); no stage emits event facts.
    Rows go into one buffer per kind as they are made: orjson's output keeps a 4 KiB allocation
    whatever its length (orjson 3.12 on), so a list of a bucket's rows held ~4 KiB each, a page fault
    apiece and hundreds of MB (``test_rows_buffers_hold_no_orjson_outputs``).
    """
    buffers: dict[str, bytearray] = {}
    counts: dict[str, int] = {}
    odd = bytearray()
    odd_count = 0
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for fact in facts:
        kind = fact.kind
        buffer = buffers.get(kind)
        if buffer is None:
            buffer = buffers[kind] = bytearray()
            counts[kind] = 0
        plain = _PLAIN.get(kind)
        if plain is not None:  # rows of text, numbers and booleans only: straight to JSON
            buffer += dumps((*plain(fact.row), fact.version), option=newline)
            counts[kind] += 1
            continue
        row = (TABLES[kind].row or tuple)(fact.row)
        if kind in TSV_KINDS:
            buffer += tsv_line((*row, fact.version))
            buffer += b"\n"
            counts[kind] += 1
            continue
        try:
            values = [v.decode("utf-8") if type(v) is bytes else v for v in row]
        except UnicodeDecodeError:
            odd += fact_wire.encode(fact)
            odd += b"\n"
            odd_count += 1
            continue
        values.append(fact.version)
        buffer += dumps(values, option=newline)
        counts[kind] += 1
    if events:
        buffer = buffers.setdefault("event", bytearray())
        buffer += b"\n".join(events)
        buffer += b"\n"
        counts["event"] = counts.get("event", 0) + len(events)
    out = []
    for kind in TABLES:  # the event log last, as the sink writes it
        if counts.get(kind):
            path = spill.rows_file(producer, kind, kind in TSV_KINDS)
            _append(path, buffers[kind])
            out.append((kind, str(path), counts[kind]))
    if odd_count:
        path = spill.rows_file(producer, ODD_ROWS)
        _append(path, odd)
        out.insert(0, (ODD_ROWS, str(path), odd_count))
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


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)  # find_library runs ldconfig


def _die_with_parent(parent: int | None = None) -> None:
    """Be killed when the process that started this one (``parent``, if known) dies (Linux; a fork does not inherit it)."""
    if sys.platform.startswith("linux"):
        _libc().prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1 or (parent is not None and os.getppid() != parent):  # it died before prctl took effect
            os._exit(1)


def worker_setup(policy: Policy, root: str, log_events: bool) -> None:
    """A pool worker's initializer: it dies with the replay (kill -9 of the parent left workers running), then ``setup``.

    A pool worker is single-threaded, so it runs each stage task in a fork of itself (``_in_fork``).
    """
    _die_with_parent()
    setup(policy, root, log_events)
    _context["fork"] = hasattr(os, "fork")


def route_task(index: int, batch: list[Record] | LineBatch | LoggedBatch) -> Done:
    """Pass 0 over one batch: the event log and rejections to a rows file, stage records to their shards."""
    started, cpu = time.perf_counter(), time.process_time()
    gc.disable()  # a batch's objects are acyclic and gone at its end: no collector passes over them
    try:
        records = batch.records() if isinstance(batch, (LineBatch, LoggedBatch)) else batch
        return _route(index, records, started, cpu)
    finally:
        gc.enable()


class _Filed:
    """Pass 0's ``Router`` out: stage records by (topic, shard), event-log rows made as they come."""

    __slots__ = ("by_topic", "events", "first", "log", "rows")

    def __init__(self, first: int, log: bool) -> None:
        self.by_topic: dict[str, list[list[StageRecord]]] = {}  # per topic: the broadcasts, then each shard's
        self.rows: list[bytes] = []
        self.events = 0
        self.first, self.log = first, log

    def send(self, topic: str, record: StageRecord, partition: int | None = None, /) -> None:
        places = self.by_topic.get(topic)
        if places is None:
            if topic not in UPSTREAM:
                return  # no pass reads it: postbacks are not decided by a replay (attribution/stages/local.py)
            places = self.by_topic[topic] = [[] for _ in range(SHARDS + 1)]
        # shard_of(record.route), inline: it is once per record
        places[0 if partition == BROADCAST else crc32(record.route.encode("utf-8")) % SHARDS + 1].append(record)

    def places(self) -> Iterator[tuple[str, int, list[StageRecord]]]:
        """(topic, shard or -1 for a broadcast, records) of every place that has some."""
        for topic, places in self.by_topic.items():
            for place, records in enumerate(places, start=-1):
                if records:
                    yield topic, place, records

    def event(self, event_id: str, type_: str, ts_us: int, origin: str, raw: bytes, /) -> None:
        # Copies of an event all come with version 0 from the router; in a replay the earliest line's row must
        # win (the one the stages count): ``first`` is this batch's place in the input, less the event's in it.
        if self.log:
            self.rows.append(
                event_line(event_id, type_, ts_us, origin, raw, FIRST_LINE_VERSION - self.first - self.events)
            )
        self.events += 1


def _route(index: int, records: list[Record], started: float, cpu: float) -> Done:
    spill: Spill = _context["spill"]
    router: Router = _context["router"]
    out = _Filed(index << 24, _context["log_events"])
    rejections, _ = router.route(records, out)
    producer = f"r{os.getpid()}"
    for topic, shard, emitted in out.places():
        _spill_kept(spill, topic, shard, producer, emitted, index + 1)  # a bucket reads its frames in input order
    _flush_kept()  # the stage passes read these files from other processes
    rows = _write_rows(spill, f"r{index}", rejections, out.rows)
    seconds, used = time.perf_counter() - started, time.process_time() - cpu
    return Done(rows, len(records), out.events, len(rejections), seconds=seconds, cpu=used, peak_mb=_peak_mb())


def _file_emits(emits: list[Emit], buckets: int | None) -> dict[tuple[str, int], list[StageRecord]]:
    """Records by (topic, place): its shard (pass 0, before K is known) or its bucket; -1 for a broadcast."""
    out: dict[tuple[str, int], list[StageRecord]] = {}
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
        lines.append(emit.record)
    return out


class _ForkTraceback(Exception):
    """Where a task raised in its fork: the traceback's text, as the cause of what the worker raises."""

    def __str__(self) -> str:
        return str(self.args[0])


def _failure(exc: BaseException) -> bytes:
    """(False, the exception, its traceback's text), pickled; the text alone if the exception does not survive."""
    text = "".join(traceback.format_exception(exc))
    try:
        payload = pickle.dumps((False, exc, text), protocol=5)
        pickle.loads(payload)  # one that pickles may still not rebuild (a constructor of other arguments)
    except Exception:  # noqa: BLE001 - then its text stands for it
        payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}"), text), protocol=5)
    return payload


def _in_fork(fn: Callable[..., Done], *args: Any) -> Done:
    """``fn(*args)`` in a fork of this process that exits without freeing what it built; what it returned or raised.

    A stage task builds a bucket's state, millions of small objects, and freeing them one by one
    took a fifth of its CPU (load_tests/bench_replay.py, with and without); the fork's memory goes
    back to the system whole when it exits. Only in pool workers: they have a single thread.
    What the fork raised is raised here, its traceback in the fork as the cause.
    """
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the fork's coverage is not collected; tests/unit/test_replay_fork.py runs it
        code = 1
        try:
            os.close(read_end)
            _die_with_parent(parent)
            _context["in_fork"] = True
            try:
                payload = pickle.dumps((True, fn(*args), ""), protocol=5)
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the worker, to be raised there
                payload = _failure(exc)
            with open(write_end, "wb") as out:
                out.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with open(read_end, "rb") as source:
        payload = source.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        raise RuntimeError(f"a replay task {fn.__name__}{args} died ({how})")
    ok, value, text = pickle.loads(payload)
    if ok:
        return value  # type: ignore[no-any-return]
    raise value from _ForkTraceback(text)


def stage_task(topic: str, bucket: int, buckets: int) -> Done:
    """One fresh stage over one bucket: read, arrange, apply; emits spilled downstream, final facts to rows files."""
    if _context.get("fork"):
        return _in_fork(_stage_task, topic, bucket, buckets)
    return _stage_task(topic, bucket, buckets)


_until_exit: list[object] = []  # in a fork (``_in_fork``): what its task built, never freed


def _forget(_: object) -> None:
    pass


def _stage_task(topic: str, bucket: int, buckets: int) -> Done:
    started, cpu = time.perf_counter(), time.process_time()
    spill: Spill = _context["spill"]
    n = buckets_of(topic, buckets)
    frames: list[tuple[int, list[StageRecord]]] = []
    for path in spill.inputs(topic, bucket, n):
        with path.open("rb") as handle:
            frames.extend(load_frames(handle))
    # Pass 0's frames in input order (its workers' files interleave their batches), so the first copy of an
    # event is its first line, in every run; frames of upstream stages (order 0) stay in their files' order.
    frames.sort(key=lambda frame: frame[0])
    records: list[StageRecord] = [record for _, part in frames for record in part]
    del frames
    gc.disable()  # everything built here lives until the task ends, and none of it is cyclic
    try:
        runner = BucketPass(topic, _context["policy"])
        producer = f"{topic}-{bucket}"
        for emits in runner.run(runner.arranged(records)):
            for (target, place), emitted in _file_emits(emits, buckets).items():
                path = (
                    spill.broadcast_file(target, producer) if place < 0 else spill.bucket_file(target, place, producer)
                )
                _spill(path, emitted)
        # In a fork, which exits without freeing, what the task is done with is kept, not freed one object at
        # a time (a tenth of the touch and user tasks' CPU, what the fork is there to avoid); here it is freed.
        done_with = _until_exit.append if _context.get("in_fork") else _forget
        done_with(records)
        del records
        facts = runner.facts()
        keys = runner.keys()
        done_with(runner)
        del runner
        duplicates = sum(
            1 for f in facts if f.kind == "duplicate" and f.row.kind == EVENT_ID_DUPLICATE and f.row.active
        )
        rows = _write_rows(spill, producer, facts)
        done_with(facts)
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
