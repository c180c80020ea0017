"""How replay's passes write what they hand on: spilled stage records and the rows the parent inserts.

Spill files live for one replay, in its private temporary directory (mode
0700), written and read by the same code: they hold pickled frames of plain
tuples, a frame per append, its records by class: the most frequent classes
as one tuple per field (columns, made and read back by ``zip``), the others
as one plain tuple per record (a NamedTuple pickles through a Python-level
``__getnewargs__``, three times slower; JSON lines, attribution/stages/wire.py,
twice as slow again, and they stay the format of the Kafka stage topics,
where versions of the code meet).

Rows of the event log and of rejections, which carry raw input bytes, are
TabSeparated: bytes go as they are (no UTF-8 decode, no JSON escaping of
every quote), with ClickHouse's escapes for backslash, tab, LF and CR, and
NULL as ``\\N``. The other tables' rows stay JSON arrays (``reelroi/replay_tasks.py``).
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, BinaryIO

from attribution.orders import PaymentRec, RefundRec
from attribution.sources import Touch
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
_day = date.fromordinal

# Pickle takes a Decimal, a date or a NamedTuple through Python-level reductions, five to ten times
# slower than a str or an int: records holding them go as plain tuples of str and int (a Decimal's
# str and a date's ordinal give back exactly the same value), by these per class.
Plain = tuple[Any, ...]


def _payment(p: PaymentRec) -> Plain:
    return (p.ts, p.event_id, p.user_id, str(p.amount), p.currency, p.date.toordinal(), p.origin, p.raw)


def _payment_back(v: Plain) -> PaymentRec:
    return _new(PaymentRec, (v[0], v[1], v[2], Decimal(v[3]), v[4], _day(v[5]), v[6], v[7]))


def _refund(r: RefundRec) -> Plain:
    return (r.ts, r.event_id, str(r.amount), r.currency, r.date.toordinal(), r.origin, r.raw)


def _refund_back(v: Plain) -> RefundRec:
    return _new(RefundRec, (v[0], v[1], Decimal(v[2]), v[3], _day(v[4]), v[5], v[6]))


def _touch_back(v: Plain | None) -> Touch | None:
    return None if v is None else _new(Touch, v)


# Records of these classes go as columns (one tuple per field, built and read back by zip in C, no Python
# call per record): their fields are text, integers, booleans and None, save the Decimal and date columns
# named here, converted column by column.
_COLUMNS: dict[type[Any], dict[int, tuple[Callable[[Any], Any], Callable[[Any], Any]]]] = {
    TouchIn: {}, RedirectAt: {}, RedirectIn: {}, CallbackIn: {}, ClockIn: {},
    UnlockIn: {3: (str, Decimal), 5: (date.toordinal, _day)},
    SpendIn: {4: (date.toordinal, _day), 5: (str, Decimal)},
}  # fmt: skip
# The others row by row, as plain tuples (by these per class where a field is a Decimal, a date or a record).
_PLAIN: dict[type[Any], tuple[Callable[[Any], Plain], Callable[[Plain], Any]]] = {
    PaymentIn: (lambda r: (r.order_id, _payment(r.rec)), lambda v: _new(PaymentIn, (v[0], _payment_back(v[1])))),
    RefundIn: (lambda r: (r.order_id, _refund(r.rec)), lambda v: _new(RefundIn, (v[0], _refund_back(v[1])))),
    Answer: (
        lambda r: (r.user_id, r.redirect_id, r.slot, r.version, r.click and tuple(r.click),
                   r.impression and tuple(r.impression)),
        lambda v: _new(Answer, (v[0], v[1], v[2], v[3], _touch_back(v[4]), _touch_back(v[5]))),
    ),
    OrderResult: (
        lambda r: (
            r.user_id, r.order_id, r.version, r.counted and _payment(r.counted),
            None if r.rate is None else str(r.rate), tuple(_refund(f) for f in r.refunds),
        ),
        lambda v: _new(OrderResult, (
            v[0], v[1], v[2], v[3] and _payment_back(v[3]), None if v[4] is None else Decimal(v[4]),
            tuple(_refund_back(f) for f in v[5]),
        )),
    ),
}  # fmt: skip
_TO_PLAIN = tuple(_PLAIN[cls][0] if cls in _PLAIN else tuple for cls in _CLASSES)
_FROM_PLAIN = tuple(_PLAIN[cls][1] if cls in _PLAIN else None for cls in _CLASSES)
_ENCODE = tuple(
    None if cls not in _COLUMNS else tuple((i, there) for i, (there, _) in _COLUMNS[cls].items()) for cls in _CLASSES
)
_DECODE = tuple(
    None if cls not in _COLUMNS else tuple((i, back) for i, (_, back) in _COLUMNS[cls].items()) for cls in _CLASSES
)
_MAKERS = tuple(functools.partial(_new, cls) for cls in _CLASSES)


def dump_records(records: Sequence[StageRecord], handle: BinaryIO, order: int = 0) -> None:
    """Append one frame holding ``records`` to ``handle``; ``order`` places it among other files' frames.

    A frame holds its records by class (classes in the order they first come, each class's records in
    theirs): ``load_frames`` gives them back so, which is all a bucket's arrangement needs, each of its
    ranks being one class (attribution/stages/passes.py, ``arrange``).
    """
    groups: dict[type[Any], list[StageRecord]] = {}
    for record in records:
        group = groups.get(type(record))
        if group is None:
            groups[type(record)] = [record]
        else:
            group.append(record)
    parts: list[tuple[int, Any]] = []
    for cls, group in groups.items():
        tag = _TAGS[cls]
        encode = _ENCODE[tag]
        if encode is None:
            plain = _TO_PLAIN[tag]
            parts.append((tag, [plain(r) for r in group]))
            continue
        columns: list[Any] = list(zip(*group, strict=True))
        for i, enc in encode:
            columns[i] = tuple(map(enc, columns[i]))
        parts.append((-1 - tag, columns))  # a negative tag: columns
    pickler = pickle.Pickler(handle, protocol=5)
    pickler.fast = True  # no memo: nothing here is shared or cyclic, and the memo costs half the time
    pickler.dump((order, parts))


def load_frames(handle: BinaryIO) -> Iterator[tuple[int, list[StageRecord]]]:
    """Every frame in ``handle``, in the order they were appended: (its order, its records, by class)."""
    back = _FROM_PLAIN
    while True:
        try:
            order, parts = pickle.load(handle)
        except EOFError:
            return
        records: list[StageRecord] = []
        for tag, payload in parts:
            if tag >= 0:
                b = back[tag]
                records.extend(map(_MAKERS[tag], payload) if b is None else map(b, payload))
                continue
            tag = -1 - tag
            for i, decode in _DECODE[tag] or ():
                payload[i] = map(decode, payload[i])
            records.extend(map(_MAKERS[tag], zip(*payload, strict=True)))
        yield order, records


# --------------------------------------------------------------------------- TabSeparated rows

_ESCAPES = ((b"\\", b"\\\\"), (b"\t", b"\\t"), (b"\n", b"\\n"), (b"\r", b"\\r"))
_ESCAPED = b"\\\t\n\r"
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


def event_line(event_id: str, type_: str, ts_us: int, origin: str, raw: bytes, version: int) -> bytes:
    """``tsv_line`` of an event-log row (a ``LoggedEvent``'s fields) and its version, the same bytes faster.

    It is one row per input line: printable text holds no tab, LF or CR, so when the three texts
    together are printable and hold no backslash they go as they are (one check, not three).
    """
    if len(raw.translate(None, _ESCAPED)) != len(raw):  # one pass over the line (four ``in`` took 3x as long)
        raw = tsv_field(raw)
    text = event_id + type_ + origin
    if text.isprintable() and "\\" not in text:
        return b"%s\t%s\t%d\t%s\t%s\t%d" % (event_id.encode(), type_.encode(), ts_us, origin.encode(), raw, version)
    return b"%s\t%s\t%d\t%s\t%s\t%d" % (tsv_field(event_id), tsv_field(type_), ts_us, tsv_field(origin), raw, version)


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
