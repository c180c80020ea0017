"""Reading JSON-lines event files (``.gz`` allowed, ``-`` for stdin) as engine records."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from attribution.engine import Record
from attribution.errors import ConfigError

# JSON's own whitespace: a line of form feeds is not blank, it is invalid JSON.
_JSON_WHITESPACE = b" \t\r\n"


def check_inputs(paths: list[str]) -> None:
    """Fail early, before anything is replaced, if an input cannot be read."""
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


def read_records(paths: list[str], batch_size: int = 50_000) -> Iterator[list[Record]]:
    """Batches of records; origin is ``<arg#>:<file>:<line#>`` so each line is one identity."""
    batch: list[Record] = []
    for index, path in enumerate(paths, start=1):
        prefix = f"{index}:{path}:"
        try:
            with _open(path) as handle:
                for number, line in enumerate(handle, start=1):
                    stripped = line.strip(_JSON_WHITESPACE)
                    if not stripped:
                        continue  # SPEC 4: blank lines are skipped
                    batch.append(Record(prefix + str(number), stripped))
                    if len(batch) >= batch_size:
                        yield batch
                        batch = []
        except (OSError, EOFError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    if batch:
        yield batch
