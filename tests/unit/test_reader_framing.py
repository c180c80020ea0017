"""Reading files (reelroi/sources_io.py): oversized lines are measured and kept as SPEC 2 frames them.

A CR before the LF is not part of an event, even when the line is over the
limit and only its head was read; a CR inside the line is. The kept head is
never longer than the line itself. ``read_batches`` (lines framed later, in
the workers) gives exactly ``read_records``'s records.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _line_by_line(path: Path, batch_size: int, max_line: int) -> list:
    """The reader as it was before blocks: ``_lines`` one line at a time, batches cut at the same places."""
    from reelroi.sources_io import _lines, _open
    from schemas.framing import frame_line

    out: list = []
    lines: list[bytes] = []
    first = 1
    prefix = f"1:{path}:"
    with _open(str(path)) as handle:
        for number, (line, length, terminated) in enumerate(_lines(handle, max_line), start=1):
            if length is None and terminated:
                if not lines:
                    first = number
                lines.append(line)
                if len(lines) >= batch_size:
                    out.append(LineBatch(prefix, first, lines, max_line))
                    lines = []
                continue
            if lines:
                out.append(LineBatch(prefix, first, lines, max_line))
                lines = []
            record = frame_line(line, prefix + str(number), max_line, length, terminated)
            if record is not None:
                out.append([record])
    if lines:
        out.append(LineBatch(prefix, first, lines, max_line))
    return out


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from([b"", b"x", b"xy", b" ", b"\r", b"abcdefghij", b"a\rb", b"\t \r", b"{}"])
        | st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
        max_size=40,
    ),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.integers(1, 12),
    st.integers(1, 5),
    st.integers(1, 64),
    st.booleans(),
)
def test_blocks_read_exactly_what_lines_read_one_by_one(
    lines: list[bytes], end: bytes, final_lf: bool, max_line: int, batch_size: int, block: int, gz: bool
) -> None:
    """Batches and records of ``read_batches`` (blocks split in memory) equal the line-by-line reader's, whatever the
    block size: lines over the limit (which send the rest of the file to the line reader), CRLF, no last LF, gzip."""
    import gzip
    import tempfile

    from reelroi import sources_io

    data = end.join(lines) + (end if final_lf and lines else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_bytes(gzip.compress(data) if gz else data)
        saved = sources_io._READ
        sources_io._READ = block
        try:
            got = list(read_batches([str(path)], batch_size, max_line))
        finally:
            sources_io._READ = saved
        assert got == _line_by_line(path, batch_size, max_line)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from([b"{}", b"{\r", b"{ \r", b'{"a":1}', b" {}", b"{" + b"x" * 20, b"\r", b" ", b""])
        | st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
        max_size=30,
    ),
    st.integers(1, 24),
    st.integers(1, 1000),
)
def test_a_batch_frames_each_line_as_frame_line_does(lines: list[bytes], max_line: int, first: int) -> None:
    """``LineBatch.records`` (which builds the records of plain object lines itself) is ``frame_line`` line by line."""
    from schemas.framing import frame_line

    expected = [r for n, line in enumerate(lines, start=first) if (r := frame_line(line, f"p:{n}", max_line))]
    got = LineBatch("p:", first, lines, max_line).records()
    assert got == expected
    assert [type(r) for r in got] == [type(r) for r in expected]
