"""How replay's passes write what they hand on: spilled stage records and the rows the parent inserts.

Spill files live for one replay, in its private temporary directory (mode
0700), written and read by the same code: they hold pickled frames of plain
tuples, a frame per append, each record as its class's index and its fields
(a NamedTuple pickles through a Python-level ``__getnewargs__``, three times
slower; JSON lines, attribution/stages/wire.py, twice as slow again, and they
stay the format of the Kafka stage topics, where versions of the code meet).

Rows of the event log and of rejections, which carry raw input bytes, are
TabSeparated: bytes go as they are (no UTF-8 decode, no JSON escaping of
every quote), with ClickHouse's escapes for backslash, tab, LF and CR, and
NULL as ``\\N``. The other tables' rows stay JSON arrays (``reelroi/replay_tasks.py``).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from attribution.outputs import LoggedEvent
from attribution.stages.records import (
    Answer,
    CallbackIn,
    ClockIn,
    ConfigIn,
    ConversionsIn,
    OrderResult,
    PaymentIn,
    RedirectAt,
    RedirectIn,
    RefundIn,
    SendPostback,
    SpendIn,
    StageRecord,
    TouchIn,
    UnlockIn,
)

_CLASSES: tuple[type[Any], ...] = (
    TouchIn, RedirectAt, RedirectIn, UnlockIn, Answer, OrderResult, PaymentIn, RefundIn, SpendIn, ConfigIn,
    CallbackIn, ConversionsIn, ClockIn, SendPostback,
)  # fmt: skip
_TAGS = {cls: index for index, cls in enumerate(_CLASSES)}
_new = tuple.__new__


def dump_records(records: Sequence[StageRecord], handle: BinaryIO, order: int = 0) -> None:
    """Append one frame holding ``records`` to ``handle``; ``order`` places it among other files' frames."""
    tags = bytes([_TAGS[type(r)] for r in records])
    pickler = pickle.Pickler(handle, protocol=5)
    pickler.fast = True  # no memo: nothing here is shared or cyclic, and the memo costs half the time
    pickler.dump((order, tags, [tuple(r) for r in records]))


def load_frames(handle: BinaryIO) -> Iterator[tuple[int, list[StageRecord]]]:
    """Every frame in ``handle``, in the order they were appended: (its order, its records)."""
    classes = _CLASSES
    while True:
        try:
            order, tags, fields = pickle.load(handle)
        except EOFError:
            return
        yield order, [_new(classes[tag], values) for tag, values in zip(tags, fields, strict=True)]


# --------------------------------------------------------------------------- TabSeparated rows

_ESCAPES = ((b"\\", b"\\\\"), (b"\t", b"\\t"), (b"\n", b"\\n"), (b"\r", b"\\r"))
_UNESCAPES = {b"\\": b"\\", b"t": b"\t", b"n": b"\n", b"r": b"\r"}


def tsv_field(value: Any) -> bytes:
    kind = type(value)
    data: bytes
    if kind is bytes:
        data = value
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")
    elif value is None:
        return b"\\N"
    elif kind is bool:
        return b"1" if value else b"0"
    else:
        return str(value).encode()
    if b"\\" in data or b"\t" in data or b"\n" in data or b"\r" in data:
        for plain, escaped in _ESCAPES:
            data = data.replace(plain, escaped)
    return data


def tsv_line(values: Iterable[Any]) -> bytes:
    return b"\t".join([tsv_field(v) for v in values])


def _text(value: str) -> bytes:
    # printable text holds no tab, LF or CR: only a backslash needs the slow way
    return value.encode() if value.isprintable() and "\\" not in value else tsv_field(value)


def event_line(event: LoggedEvent, version: int) -> bytes:
    """``tsv_line`` of an event-log row and its version, the same bytes faster: it is one row per input line."""
    raw = event.raw
    if b"\\" in raw or b"\t" in raw or b"\n" in raw or b"\r" in raw:
        raw = tsv_field(raw)
    return b"%s\t%s\t%d\t%s\t%s\t%d" % (
        _text(event.event_id),
        _text(event.type),
        event.ts_us,
        _text(event.origin),
        raw,
        version,
    )


def read_tsv_line(line: bytes) -> list[bytes | None]:
    """The fields of one line ``tsv_line`` wrote, unescaped (``None`` for NULL): the server path's reader."""
    fields: list[bytes | None] = []
    for field in line.rstrip(b"\n").split(b"\t"):
        if b"\\" not in field:
            fields.append(field)
            continue
        if field == b"\\N":
            fields.append(None)
            continue
        out, i = bytearray(), 0
        while i < len(field):
            j = field.find(b"\\", i)
            if j < 0:
                out += field[i:]
                break
            out += field[i:j]
            escaped = field[j + 1 : j + 2]
            out += _UNESCAPES.get(escaped, escaped)
            i = j + 2
        fields.append(bytes(out))
    return fields
