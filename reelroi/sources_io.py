"""Reading JSON-lines event files (``.gz`` allowed, ``-`` for stdin) as engine records."""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from attribution.errors import ConfigError
from schemas.framing import DEFAULT_MAX_LINE_BYTES, Record, frame_line

_CHUNK = 1 << 20


def check_inputs(paths: list[str]) -> None:
    """Fail early, before anything is built, if an input cannot be read."""
    if not paths:
        raise ConfigError("no input files given (use - for stdin)")
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise ConfigError(f"cannot read {path}: no such file")


def _open(path: str) -> BinaryIO:
    if path == "-":
        stream: BinaryIO = sys.stdin.buffer
        head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        return gzip.GzipFile(fileobj=stream) if head == b"\x1f\x8b" else stream  # type: ignore[return-value]
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _lines(handle: BinaryIO, max_line: int) -> Iterator[tuple[bytes, int | None]]:
    """(line without its LF, full length if only its head was read), never holding more than
    ``max_line`` bytes of one line."""
    limit = max_line + 2  # room for the line, a CR and the LF
    while True:
        line = handle.readline(limit)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1], None
        elif len(line) < limit:
            yield line, None  # the last line, without a LF
        else:
            length = len(line)
            while True:  # skip the rest of an oversized line in bounded chunks
                more = handle.readline(_CHUNK)
                length += len(more)
                if not more or more.endswith(b"\n"):
                    length -= 1 if more.endswith(b"\n") else 0
                    break
            yield line, length


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
    for index, path in enumerate(paths, start=1):
        prefix = f"{index}:{path}:"
        try:
            with _open(path) as handle:
                for number, (line, length) in enumerate(_lines(handle, max_line), start=1):
                    record = frame_line(line, prefix + str(number), max_line, length)
                    if record is None:
                        continue
                    batch.append(record)
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"cannot read {path}: {exc or type(exc).__name__}") from exc
    if batch:
        yield batch
