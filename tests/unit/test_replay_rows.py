"""Replay's rows files (reelroi/replay_tasks.py ``_write_rows``): what they hold, and what making them holds."""

from __future__ import annotations

import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson

from attribution.outputs import LoggedEvent, MoneyFact, Rejection, UserFact
from attribution.stages import facts as fact_wire
from attribution.stages import wire
from attribution.stages.facts import Fact
from attribution.stages.records import TouchIn
from reelroi.replay_codec import read_tsv_line
from reelroi.replay_tasks import Spill, _write_rows
from sinks.rows import TABLES


def _money(n: int) -> MoneyFact:
    return MoneyFact(
        f"au-{n}", "ad_unlock", f"u{n % 97}", "", 1_762_160_854_000_000 + n, date(2026, 11, 3), "campaign", "gdt0009",
        date(2026, 11, 2), "CNY", Decimal("0.0513"), Decimal(1), Decimal("0.0513"), "", Decimal(0), n % 5 != 0,
    )  # fmt: skip


def _spill(tmp_path: Path) -> Spill:
    spill = Spill(tmp_path)
    spill.make()
    return spill


def test_rows_files_hold_each_fact_as_its_table_row_then_version(tmp_path: Path) -> None:
    user = UserFact("u1", "campaign", "gdt0009", "click_id", date(2026, 11, 2), 1_762_160_854_000_000)
    rejection = Rejection("f:1", "invalid_json", "no", "", "", "f:1", b'{"a":\t"\\\n', True)
    late = Rejection("event:e9", "no_fx_rate", "x", "e9", "ad_unlock", "f:9", b"\xff", False)
    facts = [Fact("money", 3, _money(1)), Fact("user", 4, user), Fact("rejection", 5, rejection),
             Fact("money", 6, _money(2)), Fact("rejection", 7, late)]  # fmt: skip
    events = [b"e1\timpression\t1\tf:1\t{}\t9", b"e2\tclick\t2\tf:2\t{}\t8"]
    written = _write_rows(_spill(tmp_path), "p", facts, events)

    assert [(kind, count) for kind, _, count in written] == [
        ("rejection", 2), ("user", 1), ("money", 2), ("event", 2),
    ]  # fmt: skip
    files = {kind: Path(path).read_bytes() for kind, path, _ in written}
    money = TABLES["money"].row
    assert money is not None
    assert files["money"].splitlines() == [orjson.dumps([*money(f.row), f.version]) for f in (facts[0], facts[3])]
    assert orjson.loads(files["user"]) == ["u1", "campaign", "gdt0009", "click_id", 20759, 1_762_160_854_000_000, 0, 4]
    assert [read_tsv_line(line) for line in files["rejection"].splitlines()] == [
        [b"f:1", b"invalid_json", b"no", b"", b"", b"f:1", b'{"a":\t"\\\n', b"0", b"5"],
        [b"event:e9", b"no_fx_rate", b"x", b"e9", b"ad_unlock", b"f:9", b"\xff", b"1", b"7"],  # bytes as they are
    ]
    assert files["event"] == b"".join(e + b"\n" for e in events)


def test_event_facts_beside_pass_0_event_rows_go_in_the_same_file_once(tmp_path: Path) -> None:
    logged = LoggedEvent("e9", "click", 5, "f:9", b"{}")
    written = _write_rows(_spill(tmp_path), "p", [Fact("event", 3, logged)], [b"e1\timpression\t1\tf:1\t{}\t9"])
    assert [(kind, count) for kind, _, count in written] == [("event", 2)]
    assert Path(written[0][1]).read_bytes() == b"e9\tclick\t5\tf:9\t{}\t3\ne1\timpression\t1\tf:1\t{}\t9\n"


def test_rows_buffers_hold_no_orjson_outputs(tmp_path: Path) -> None:
    """orjson's output keeps a 4 KiB allocation whatever its length: a list of them held ~4 KiB a row."""
    facts = [Fact("money", n, _money(n)) for n in range(20_000)]
    spill = _spill(tmp_path)
    tracemalloc.start()
    try:
        _write_rows(spill, "p", facts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = spill.rows_file("p", "money").stat().st_size
    assert size > 2_000_000
    assert peak < 3 * size, (peak, size)


def test_encoded_stage_records_and_facts_hold_only_their_bytes() -> None:
    """A stream worker holds a batch's encoded lines until the broker has them: each must be its own size."""
    touches = [TouchIn(f"d:dev{n}", n, f"im-{n}", True, "campaign", "ks0028", f"f:{n}", True) for n in range(5_000)]
    facts = [Fact("money", n, _money(n)) for n in range(5_000)]
    tracemalloc.start()
    try:
        lines = [wire.encode(t) for t in touches] + [fact_wire.encode(f) for f in facts]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wire.decode(lines[7]) == touches[7] and fact_wire.decode(lines[-1]) == facts[-1]
    assert held < 2 * sum(map(len, lines)) + 200_000, (held, sum(map(len, lines)))
