"""The run: the prelude, then minute by minute, with duplicates and malformed lines slipped in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from reelroi.generator.arrivals import arrival
from reelroi.generator.encoding import dumps
from reelroi.generator.hourly import hourly
from reelroi.generator.malformed import malformed_line
from reelroi.generator.sessions import due
from reelroi.generator.tables import DAY, DIURNAL, SLOTS
from reelroi.generator.traffic import Traffic


def prelude(tr: Traffic) -> list[bytes]:
    """Configuration, then clicks from more than a week before the start."""
    w, rnd = tr.w, tr.rnd
    lines = [dumps(ev) + b"\n" for _, ev in sorted(w.config, key=lambda p: (p[0], p[1]["event_id"]))]
    stale = []
    for _ in range(max(10, min(1000, int(tr.users_per_day) // 200))):
        src = tr.source()
        if src is None:
            break
        t = w.start - 8 * DAY - int(rnd() * 6 * DAY)
        dev = tr.device()
        cid = f"k{next(tr.ids):x}"
        tr.stale.append((cid, dev))
        stale.append(
            (
                t,
                {
                    "type": "click",
                    "event_id": tr.eid("ck-"),
                    "ts": src.fmt(t),
                    "click_id": cid,
                    "device_id": dev,
                    src.key: src.id,
                },
            )
        )
    stale.sort(key=lambda p: p[0])
    return lines + [dumps(ev) + b"\n" for _, ev in stale]


def run(tr: Traffic) -> Iterator[bytes]:
    cfg, w = tr.cfg, tr.w
    first = w.start // 60
    tr.cur = first
    yield from deliver(tr, prelude(tr))
    per_minute = [h / sum(DIURNAL) * tr.users_per_day / 60 for h in DIURNAL]
    carry = 0.0
    for day in range(cfg.days):
        d = cfg.start_date + timedelta(days=day)
        factor = (1.12 if d.weekday() >= 5 else 1.0) * (0.95 + 0.1 * tr.rnd())
        for minute in range(1440):
            m = first + day * 1440 + minute
            tr.cur = m
            t0 = m * 60
            if minute % 60 == 0:
                hourly(tr, t0)
            carry += per_minute[minute // 60] * factor
            n = int(carry)
            carry -= n
            for _ in range(n):
                arrival(tr, t0 + int(tr.rnd() * 60))
            due(tr, m)
            bucket = tr.buckets.pop(m, None)
            if bucket:
                yield from deliver(tr, bucket)
    # After the window: last hour's spend, late deliveries and retries.
    m = first + cfg.days * 1440
    tr.cur = m
    hourly(tr, m * 60)
    while tr.buckets:
        bucket = tr.buckets.pop(m, None)
        if bucket:
            yield from deliver(tr, bucket)
        m += 1
        tr.cur = m


def deliver(tr: Traffic, lines: list[bytes]) -> Iterator[bytes]:
    """Yield lines, retrying some later (duplicates) and slipping in malformed ones."""
    for line in lines:
        yield line
        tr.emitted += 1
        if tr.emitted >= tr.next_dup:
            tr.buckets[tr.cur + tr.w.retry_minutes[int(tr.rnd() * SLOTS)]].append(line)
            tr.next_dup = tr.gap(tr.cfg.duplicate_share)
        if tr.emitted >= tr.next_bad:
            yield malformed_line(tr, tr.cur * 60 + int(tr.rnd() * 60))
            tr.emitted += 1
            tr.next_bad = tr.gap(tr.cfg.malformed_share)
