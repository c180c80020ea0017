"""Reading files (reelroi/sources_io.py): oversized lines are measured and kept as SPEC 2 frames them.

A CR before the LF is not part of an event, even when the line is over the
limit and only its head was read; a CR inside the line is. The kept head is
never longer than the line itself. ``read_batches`` (lines framed later, in
the workers) gives exactly ``read_records``'s records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reelroi.sources_io import read_batches, read_records
from schemas.framing import LineBatch

M = 1 << 20


def _records(path: Path, max_line: int) -> list:
    return [r for batch in read_records([str(path)], 10, max_line) for r in batch]


@pytest.mark.parametrize(
    ("data", "max_line", "length", "kept"),
    [
        (b"x" * (M + 1) + b"\r\n", M, M + 1, b"x" * 4096),  # the CR of the CRLF is not counted
        (b"x" * (M + 1) + b"\n", M, M + 1, b"x" * 4096),
        (b"aa\r\n", 1, 2, b"aa"),  # the head read ends in the CR: not kept
        (b"aa\n", 1, 2, b"aa"),
        (b"a" * 11 + b"\rb\n", 10, 13, b"a" * 11 + b"\r"),  # a CR inside the line is part of it
        (b"a" * 11 + b"\r" + b"b" * (M + 5) + b"\r\n", 10, 11 + 1 + M + 5, b"a" * 11 + b"\r"),
    ],
)
def test_an_oversized_line_is_measured_without_its_line_end(
    tmp_path: Path, data: bytes, max_line: int, length: int, kept: bytes
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data + b'{"type":"x"}\n')
    first, second = _records(path, max_line)
    assert first.verdict is not None and first.verdict.reason == "too_large"
    assert first.verdict.detail.startswith(f"line of {length:,} bytes is over the limit of {max_line:,}")
    assert first.verdict.detail.endswith(f"first {len(kept):,} kept")
    assert first.raw == kept
    assert second.origin.endswith(":2")
    framed = [
        r
        for part in read_batches([str(path)], 10, max_line)
        for r in (part.records() if isinstance(part, LineBatch) else part)
    ]
    assert framed == [first, second]
