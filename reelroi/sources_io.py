"""Reading JSON-lines event files (``.gz`` allowed, ``-`` for stdin) as engine records."""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from attribution.errors import ConfigError
from schemas.framing import DEFAULT_MAX_LINE_BYTES, LineBatch, Record, frame_line

_CHUNK = 1 << 20
_READ = 1 << 22  # bytes per read of ``_runs``
_BLANK = b" \t\r"


def check_inputs(paths: list[str]) -> None:
    """Fail early, before anything is built, if an input cannot be read."""
    if not paths:
        raise ConfigError("no input files given (use - for stdin)")
    for path in paths:
        if path == "-":
            continue
        target = Path(path)
        if not target.exists():  # pipes and /dev/fd/N are fine: only directories and missing paths are not
            raise ConfigError(f"cannot read {path}: no such file")
        if target.is_dir():
            raise ConfigError(f"cannot read {path}: it is a directory")


_GZIP_MAGIC = b"\x1f\x8b"


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the format) and are given back first."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        got: int = self._rest.readinto(buffer)  # type: ignore[attr-defined]  # files, stdin and gzip have it: no copy
        return got

    def close(self) -> None:
        self._rest.close()
        super().close()


def _open(path: str) -> BinaryIO:
    """The input's bytes, gunzipped when they start with gzip's magic, whatever the name says."""
    stream: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - the caller closes it
    head = stream.read(2)  # blocks until two bytes or the end, even on a slow pipe
    replayed: BinaryIO = io.BufferedReader(_Prefixed(head, stream))
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=replayed)  # type: ignore[return-value]
    return replayed


def _lines(handle: BinaryIO, max_line: int) -> Iterator[tuple[bytes, int | None, bool]]:
    """(line without its LF, full length if only its head was read, whether a LF ended it),
    never holding more than ``max_line`` bytes of one line."""
    limit = max_line + 2  # room for the line, a CR and the LF
    while True:
        line = handle.readline(limit)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1], None, True
        elif len(line) < limit:
            yield line, None, False  # the last line, without a LF
        else:
            length = len(line)
            blank = not line.strip(_BLANK)
            before = line[-1:]  # the byte before the chunk being read
            while True:  # skip the rest of an oversized line in bounded chunks
                more = handle.readline(_CHUNK)
                length += len(more)
                blank = blank and not more.strip(_BLANK + b"\n")
                if not more or more.endswith(b"\n"):
                    if more.endswith(b"\n"):
                        # neither the LF nor a CR before it is part of the event (SPEC 2)
                        length -= 2 if (more[-2:-1] or before) == b"\r" else 1
                    break
                before = more[-1:]
            # a blank line is skipped however long (as frame_line does for one read whole)
            yield (b"", None, True) if blank else (line, length, True)


Run = tuple[list[bytes], tuple[bytes, int | None, bool] | None]


def _runs(handle: BinaryIO, max_line: int) -> Iterator[Run]:
    """What ``_lines`` yields, grouped: runs of whole LF-terminated lines (without their LF), each followed by at
    most one line ``_lines`` yields otherwise (read in part, or not ended by a LF).

    Reads large blocks and splits them where every line of a block is whole (``readline(limit)`` would have
    returned it with its LF); from the first line that is not (over the limit, or the last one without a LF), it
    hands the rest of the input to ``_lines`` itself, so those are read exactly as ``_lines`` reads them.
    """
    limit = max_line + 2
    read = getattr(handle, "read1", handle.read)  # what is there: a pipe's lines are not held back for a block
    buffer = b""  # what was read and not yet handed on: the start of a line
    while True:
        block = read(_READ)
        if not block:
            break
        if block.find(b"\n") < 0:
            buffer = buffer + block if buffer else block
            if len(buffer) >= limit:
                break  # a line over the limit: ``_lines`` reads it in bounded chunks
            continue
        # the block split as it is (no copy of it joined to the last one's tail, nor of its lines' part)
        run = block.split(b"\n")
        tail = run.pop()
        if buffer:
            run[0] = buffer + run[0]
        if max(map(len, run)) + 1 > limit:
            buffer = b"\n".join(run) + b"\n" + tail  # a line over the limit in this block: all of it, unread
            break
        yield run, None
        buffer = tail
    rest = io.BufferedReader(_Prefixed(buffer, handle)) if buffer else handle
    for line, length, terminated in _lines(rest, max_line):
        yield ([line], None) if length is None and terminated else ([], (line, length, terminated))


def read_records(
    paths: list[str], batch_size: int = 50_000, max_line: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[list[Record]]:
    """Batches of records; origin is ``<arg#>:<file>:<line#>`` so each line is one identity.

    Blank lines are skipped (SPEC 4); a line over ``max_line`` bytes becomes a
    ``too_large`` rejection holding its first bytes. A file that cannot be read
    to its end (missing, unreadable, a truncated or corrupt ``.gz``) raises
    ``ConfigError`` naming it, whenever that is found.
    """
    batch: list[Record] = []
    for part in read_batches(paths, batch_size, max_line):
        batch.extend(part.records() if isinstance(part, LineBatch) else part)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_batches(
    paths: list[str], batch_size: int = 50_000, max_line: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[LineBatch | list[Record]]:
    """What ``read_records`` reads, in input order, as ``LineBatch``es of up to ``batch_size`` lines still to
    be framed (by whoever routes them), and the records of lines framed here: a line over the limit (only its
    head was read) or a last line with no LF."""
    for index, path in enumerate(paths, start=1):
        # a name that is not UTF-8 arrives with surrogate escapes (os.fsdecode), which no row can carry: its
        # bytes shown as \xNN in the origin instead
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        prefix = f"{index}:{shown}:"
        lines: list[bytes] = []
        first = number = 1  # the line number of lines[0], and of the next line read
        try:
            with _open(path) as handle:
                for run, odd in _runs(handle, max_line):
                    start = 0
                    while start < len(run):
                        if not lines:
                            first = number + start
                        stop = start + batch_size - len(lines)
                        lines.extend(run[start:stop])
                        start = stop
                        if len(lines) >= batch_size:
                            yield LineBatch(prefix, first, lines, max_line)
                            lines = []
                    number += len(run)
                    if odd is None:
                        continue
                    if lines:
                        yield LineBatch(prefix, first, lines, max_line)
                        lines = []
                    line, length, terminated = odd
                    record = frame_line(line, prefix + str(number), max_line, length, terminated)
                    number += 1
                    if record is not None:
                        yield [record]
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"cannot read {path}: {exc or type(exc).__name__}") from exc
        if lines:
            yield LineBatch(prefix, first, lines, max_line)
