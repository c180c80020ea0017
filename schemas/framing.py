"""Input framing (SPEC sections 2 and 4): lines of a file or a Kafka message become records.

A record is one line to decode, or a line already judged by its framing: an
empty or null Kafka value, or a line over the size limit. Either way it keeps
its origin and its bytes (the first ``KEPT_BYTES`` of an oversized line), so
nothing that arrives is lost and no line costs memory beyond the limit.
"""

from __future__ import annotations

from typing import NamedTuple

from schemas.decode import INVALID_JSON, TOO_LARGE, Invalid

DEFAULT_MAX_LINE_BYTES = 1 << 20  # Kafka's default max.message.bytes; events are a few hundred bytes
KEPT_BYTES = 4096  # of a line over the limit: enough to see what it was
_BLANK = b" \t\r"  # SPEC 2: a line of only these is blank


class Record(NamedTuple):
    """One input line: where it came from (file line, Kafka offset and line), its bytes, and a
    verdict when framing has already decided it is a rejection."""

    origin: str
    raw: bytes
    verdict: Invalid | None = None


def frame_line(
    line: bytes, origin: str, max_line: int, length: int | None = None, terminated: bool = True
) -> Record | None:
    """A record for one line (its LF removed), or None if it is blank.

    ``length`` is the line's full length when only its head was read (a file
    line over the limit is never held whole); ``terminated`` says whether a LF
    ended it (only then is a CR before it not part of the event).
    """
    if terminated and length is None and line.endswith(b"\r"):  # SPEC 2: a CR before the LF is not part of the event
        line = line[:-1]  # (not in a head read of a longer line: its CR, if any, is the reader's to count)
    if length is None:
        if not line.strip(_BLANK):
            return None  # blank, however long
        length = len(line)
    if length > max_line:
        kept = line[: min(length, KEPT_BYTES)]  # a head read may end in the CR of a CRLF just past the limit
        detail = (
            f"line of {length:,} bytes is over the limit of {max_line:,} (REELROI_MAX_LINE_BYTES); "
            f"first {len(kept):,} kept"
        )
        return Record(origin, kept, Invalid(TOO_LARGE, detail))
    return Record(origin, line)


class LineBatch(NamedTuple):
    """Consecutive LF-terminated lines of one input, framed where they are routed.

    Cheaper to hand to another process than their records (a list of bytes
    pickles at memory speed): ``records()`` gives exactly the records
    ``frame_line`` makes of them, line ``first + i`` being ``lines[i]``.
    Lines that were read only in part (over the size limit) or not ended by a
    LF are never in one: the reader frames those itself.
    """

    prefix: str  # origins are prefix + line number
    first: int
    lines: list[bytes]  # without their LF
    max_line: int

    def records(self) -> list[Record]:
        out = []
        prefix, max_line = self.prefix, self.max_line
        new = tuple.__new__  # a NamedTuple's own constructor is a Python function
        for number, line in enumerate(self.lines, start=self.first):
            if line[:1] == b"{" and line[-1:] != b"\r" and len(line) <= max_line:
                out.append(new(Record, (prefix + str(number), line, None)))  # what frame_line makes of it
                continue
            record = frame_line(line, prefix + str(number), max_line)
            if record is not None:
                out.append(record)
        return out

    def __len__(self) -> int:  # lines, as a batch of records has
        return len(self.lines)

    def part(self, start: int, stop: int) -> LineBatch:
        return LineBatch(self.prefix, self.first + start, self.lines[start:stop], self.max_line)


class LoggedBatch(NamedTuple):
    """Records of the stored event log as two lists (origins, raw lines): cheaper to hand to another process
    than ``Record``s, which pickle one by one through a Python-level method."""

    origins: list[str]
    raws: list[bytes]

    def records(self) -> list[Record]:
        return [Record(origin, raw) for origin, raw in zip(self.origins, self.raws, strict=True)]

    def __len__(self) -> int:
        return len(self.raws)

    def part(self, start: int, stop: int) -> LoggedBatch:
        return LoggedBatch(self.origins[start:stop], self.raws[start:stop])


def frame_message(value: bytes | None, origin: str, max_line: int) -> list[Record]:
    """The records of one Kafka message value: one event, or a batch of JSON lines.

    Line ``n`` gets origin ``<origin>:<n>``. An empty or null value is itself a
    rejection (SPEC 4), kept under the message's own origin.
    """
    if not value:  # a tombstone (null) or an empty value: there is no event in it
        return [Record(origin, b"", Invalid(INVALID_JSON, "empty or null Kafka message value"))]
    if b"\n" not in value:
        record = frame_line(value, f"{origin}:1", max_line, terminated=False)
        return [record] if record is not None else []
    lines = value.split(b"\n")
    records = []
    for number, line in enumerate(lines, start=1):
        record = frame_line(line, f"{origin}:{number}", max_line, terminated=number < len(lines))
        if record is not None:
            records.append(record)
    return records
