"""The attributor: one engine over the whole intake, fed partition by partition.

Attribution joins a user's redirect to clicks by click_id (any device) and by
device, payments to refunds by order, and every amount to the fx table; no
Kafka key co-locates all of them. So intake is split across workers (any
number), and attribution runs in exactly one of them at a time, the faust
leader, over everything intake has stored. A new leader rebuilds the engine
from the event log and goes on from the saved per-partition offsets.

Order of writes for one batch: facts, then the event log (inside
``ClickHouseSink.write``), then the offsets. A crash anywhere in between
leaves records after the saved offsets that the log may already hold; the next
leader skips exactly those (by origin) and recomputes the rest, idempotently.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

from attribution.engine import Engine
from attribution.outputs import Outputs
from attribution.policy import Policy
from schemas.decode import INVALID_JSON, Invalid
from schemas.framing import DEFAULT_MAX_LINE_BYTES, Record, frame_message
from sinks.intake import TP, IntakeRecord, IntakeStore, parse_origin
from sinks.writer import ClickHouseSink

log = logging.getLogger("reelroi.attributor")


class Fenced(RuntimeError):
    """A newer attributor has taken over; this one must stop writing."""


class Attributor:
    """Leader-side state. ``take_over`` then ``step`` repeatedly; ``step_down`` frees the engine."""

    def __init__(
        self,
        sink: ClickHouseSink,
        policy: Policy,
        lock: threading.Lock,
        name: str = "worker",
        on_batch: Callable[[list[IntakeRecord], Outputs, float, float], None] | None = None,
        keep_freshness: bool = False,
        max_line: int = DEFAULT_MAX_LINE_BYTES,
        page_lines: int = 50_000,
    ) -> None:
        self.sink = sink
        self.store = IntakeStore(sink.client, sink.db)
        self.policy = policy
        self.lock = lock  # one ClickHouse client per process: intake and attribution take turns
        self.name = name
        self.on_batch = on_batch
        self.engine: Engine | None = None
        self.epoch = 0
        self.cursor: dict[TP, int] = {}
        self.logged_after_cursor: set[str] = set()
        self.events = 0
        self.batches = 0
        self.first_batch_at: float | None = None
        self.last_batch_at: float | None = None
        self.page_lines = page_lines  # lines per attribution batch, at most (a record may hold many)
        self.max_line = max_line  # bytes of one line of a message, at most (SPEC 2: a message is a batch of lines)
        self.keep_freshness = keep_freshness  # benchmarks: every record's Kafka append -> written
        self.freshness_s: list[float] = []

    @property
    def active(self) -> bool:
        return self.engine is not None

    def take_over(self) -> int:
        """Claim a new epoch, rebuild the engine from the event log; returns the events loaded."""
        with self.lock:
            self.sink.clock.advance_past(max(self.sink.max_version(), self.store.current_epoch()))
            self.epoch = self.sink.clock.next()
            self.store.claim_epoch(self.epoch, self.name, int(time.time() * 1000))
            self.cursor = self.store.offsets()
        engine = Engine(self.policy)
        start = self.sink.clock.next()
        rewrite = ClickHouseSink(self.sink.client, self.sink.db, self.sink.clock, log_events=False)
        logged: set[str] = set()
        count = 0
        for page in self._logged_pages():
            out = engine.process([Record(origin, raw) for origin, raw in page])
            with self.lock:
                rewrite.write(out)
            for origin, _ in page:
                position = parse_origin(origin)
                if position is not None and position[1] >= self.cursor.get(position[0], 0):
                    logged.add(origin)
            count += len(page)
        with self.lock:
            # derived rows of a write cut off mid-way may name events the log never got
            self.sink.drop_derived_older_than(start)
        self.logged_after_cursor = logged
        self.engine = engine
        log.warning("attributor %s took over (epoch %d): %d logged events", self.name, self.epoch, count)
        return count

    def _logged_pages(self) -> Any:
        pages = self.sink.logged_events()
        while True:
            with self.lock:
                page = next(pages, None)
            if page is None:
                return
            yield page

    def step_down(self) -> None:
        self.engine = None
        self.logged_after_cursor = set()

    def step(self, limit: int) -> tuple[int, Outputs]:
        """Attribute up to ``limit`` intake records after the cursor, stopping once they hold ``page_lines``
        lines: (records read, outputs written). Per partition, the cursor moves only past records taken."""
        engine = self.engine
        if engine is None:
            return 0, Outputs()
        with self.lock:
            page = self.store.page(self.cursor, limit)
        if not page:
            return 0, Outputs()
        started = time.perf_counter()
        cursor = dict(self.cursor)
        records: list[IntakeRecord] = []
        lines: list[Record] = []
        for record in page:
            if len(lines) >= self.page_lines:
                break  # a page of batched messages can hold millions of lines: the rest waits for the next step
            tp = (record.topic, record.partition)
            if record.offset < cursor.get(tp, 0):
                continue  # a second copy of a record already taken
            cursor[tp] = record.offset + 1
            records.append(record)
            lines.extend(self._lines(record))
        logged = self.logged_after_cursor
        fresh = [line for line in lines if line.origin not in logged] if logged else lines
        if logged:
            logged.difference_update(line.origin for line in lines)
        out = engine.process(fresh)
        with self.lock:
            if self.store.current_epoch() != self.epoch:
                self.step_down()
                raise Fenced(f"attributor {self.name}: epoch {self.epoch} was superseded")
            self.sink.write(out)
            self.store.save_offsets(
                {tp: n for tp, n in cursor.items() if self.cursor.get(tp) != n}, self.epoch, self.sink.clock.next()
            )
        self.cursor = cursor
        written = time.time()
        if self.first_batch_at is None:
            self.first_batch_at = written
        self.last_batch_at = written
        if self.keep_freshness:
            self.freshness_s.extend(written - r.appended_ms / 1000 for r in records)
        self.events += len(lines)
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(records, out, time.perf_counter() - started, written)
        return len(page), out

    def _lines(self, record: IntakeRecord) -> list[Record]:
        """A Kafka record's lines; a batch no codec could decode is one rejection, kept whole."""
        if record.undecodable:
            detail = f"undecodable record batch ({record.undecodable}); the whole batch is kept"
            return [Record(record.origin, record.raw, Invalid(INVALID_JSON, detail))]
        return frame_message(record.raw, record.origin, self.max_line)

    def trim(self, wait: bool = False) -> None:
        """Drop attributed records from intake (below the cursor, which is saved after each batch)."""
        if self.engine is None or not self.cursor:
            return
        with self.lock:
            self.store.trim(self.cursor, wait)

    def stats(self) -> dict[str, float]:
        elapsed = (self.last_batch_at or 0.0) - (self.first_batch_at or 0.0)
        fresh = sorted(self.freshness_s)

        def pct(q: float) -> float:
            return fresh[min(len(fresh) - 1, int(q * len(fresh)))] if fresh else 0.0

        return {
            "events": self.events,
            "batches": self.batches,
            "seconds": elapsed,
            "events_per_s": self.events / elapsed if elapsed > 0 else 0.0,
            "freshness_p50_s": pct(0.50),
            "freshness_p99_s": pct(0.99),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
