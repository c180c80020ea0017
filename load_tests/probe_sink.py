"""``reelroi sink`` that also notes when each fact was written: the freshness probe of bench_stream.py.

    python load_tests/probe_sink.py OUT.json sink --db DSN --bootstrap HOST:PORT --topic-prefix P ...

The real sink command, with ``ClickHouseSink.write_facts`` wrapped: after a
write returns (the rows are then visible to a query), the wall-clock time is
noted for the first write of each event-log row (by event_id), each money
fact (by event_id, with its user and kind) and each user fact (by user_id).
At exit OUT gets ``{"event": {id: t}, "money": {id: [t, user, kind]},
"user": {id: t}}``. The wrapper costs a dict lookup per fact.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attribution.stages.facts import Fact  # noqa: E402
from sinks.writer import ClickHouseSink  # noqa: E402

events: dict[str, float] = {}
money: dict[str, tuple[float, str, str]] = {}
users: dict[str, float] = {}
_write_facts = ClickHouseSink.write_facts


def write_facts(self: ClickHouseSink, facts: Iterable[Fact]) -> int:
    facts = list(facts)
    written: int = _write_facts(self, facts)
    now = time.time()
    for fact in facts:
        row = fact.row
        if fact.kind == "event":
            events.setdefault(row.event_id, now)
        elif fact.kind == "money":
            money.setdefault(row.event_id, (now, row.user_id, row.kind))
        elif fact.kind == "user":
            users.setdefault(row.user_id, now)
    return written


def main() -> None:
    out = Path(sys.argv[1])
    ClickHouseSink.write_facts = write_facts
    atexit.register(lambda: out.write_text(json.dumps({"event": events, "money": money, "user": users})))
    from reelroi.cli import main as cli

    raise SystemExit(cli(sys.argv[2:]))


if __name__ == "__main__":
    main()
