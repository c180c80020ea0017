"""Compressed record batches: the codecs reelroi must decode, and what a batch it cannot decode becomes.

Producers compress whole record batches with gzip, snappy, lz4 or zstd;
aiokafka (the workers' fetcher) decodes them with ``cramjam``, kafka-python
(``reelroi produce``) with ``python-snappy``, ``lz4`` and ``zstandard``.
``check_codecs`` fails a worker at start when one of them is missing.

A batch that still cannot be decoded (a codec id no client knows, or a
payload its codec rejects) makes aiokafka raise from inside the fetch; faust
then stops the worker, and a restarted worker fetches the same batch and
dies again. ``guard_fetcher`` decodes each compressed batch before aiokafka
hands it on and replaces one that fails with ONE record at the batch's
offset whose value is the whole batch as it arrived (header included, so it
can be decoded later) and whose header ``reelroi-undecodable`` says why. The
intake takes it like any record and it becomes a rejection with those bytes;
the partition moves on, the error is logged and counted
(``reelroi_undecodable_batches``), and an alert on that counter pages.
"""

from __future__ import annotations

import importlib.util
import logging
import struct
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter

from attribution.errors import ConfigError

log = logging.getLogger("reelroi.codecs")

CODECS = ("gzip", "snappy", "lz4", "zstd")
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
UNDECODABLE_HEADER = "reelroi-undecodable"
# the import names each client needs per codec (gzip is the standard library's)
_NEEDS = {
    "aiokafka": {"snappy": "cramjam", "lz4": "cramjam", "zstd": "cramjam"},
    "kafka-python": {"snappy": "snappy", "lz4": "lz4.frame", "zstd": "zstandard"},
}

UNDECODABLE_BATCHES = Counter(
    "reelroi_undecodable_batches",
    "Record batches the worker could not decompress, kept as one rejected record each, by topic and codec",
    ["topic", "codec"],
)
UNDECODABLE_RECORDS = Counter(
    "reelroi_undecodable_records", "Kafka offsets inside undecodable batches, by topic", ["topic"]
)


def missing_codecs() -> list[str]:
    """``client: codec (module)`` for every codec library that cannot be imported."""
    missing = []
    for client, needs in _NEEDS.items():
        for codec, module in needs.items():
            try:
                found = importlib.util.find_spec(module) is not None
            except ImportError:  # a parent package is missing
                found = False
            if not found:
                missing.append(f"{client}: {codec} ({module})")
    return missing


def check_codecs() -> None:
    """Raise ``ConfigError`` naming every missing codec library (a worker must decode all four)."""
    missing = missing_codecs()
    if missing:
        raise ConfigError(
            "compression codec libraries missing: "
            + ", ".join(missing)
            + " (pip install cramjam python-snappy lz4 zstandard)"
        )


def codec_of(data: bytes | memoryview, pos: int = 0) -> int:
    """The codec id in the attributes of the batch (v2) or wrapper message (v0/v1) starting at ``pos``."""
    magic = data[pos + 16]
    return (data[pos + 22] if magic >= 2 else data[pos + 17]) & 0x07


class _Record:
    """What aiokafka's fetcher reads from a record; here, the stand-in for an undecodable batch."""

    __slots__ = ("headers", "key", "offset", "timestamp", "timestamp_type", "value")
    checksum = None

    def __init__(self, offset: int, timestamp: int, value: bytes, reason: str) -> None:
        self.offset = offset
        self.timestamp = timestamp
        self.timestamp_type = 0
        self.key: bytes | None = None
        self.value = value
        self.headers = [(UNDECODABLE_HEADER, reason.encode())]


class _Decoded:
    """A batch whose records were decoded ahead (or replaced); every other attribute is the batch's."""

    def __init__(self, batch: Any, crc_ok: bool, records: list[Any]) -> None:
        self._batch = batch
        self._crc_ok = crc_ok
        self._records = records

    def validate_crc(self) -> bool:
        return self._crc_ok

    def __iter__(self) -> Iterator[Any]:
        return iter(self._records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)


class GuardedRecords:
    """aiokafka's ``MemoryRecords`` over one fetch response, decoding compressed batches before it yields them."""

    topic = "?"  # set by the guarded ``PartitionRecords`` once it knows its partition
    partition = -1

    def __init__(self, data: bytes) -> None:
        from aiokafka.record.memory_records import MemoryRecords

        self._data = data
        self._records = MemoryRecords(data)
        self._pos = 0

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        pos = self._pos
        batch = self._records.next_batch()
        if batch is None:
            return None
        offset, length = struct.unpack_from(">qi", self._data, pos)
        self._pos = pos + 12 + length
        codec = codec_of(self._data, pos)
        if codec == 0:
            return batch
        crc_ok = bool(batch.validate_crc())  # aiokafka allows it only before iterating
        if not crc_ok:  # left to aiokafka, as it always was (check_crcs decides what happens)
            return batch
        try:
            return _Decoded(batch, crc_ok, list(batch))
        except Exception as exc:  # noqa: BLE001 - any decode failure would stop the fetcher for good
            return _Decoded(batch, crc_ok, [self._stand_in(pos, offset, codec, exc)])

    def _stand_in(self, pos: int, offset: int, codec: int, exc: Exception) -> _Record:
        raw = bytes(self._data[pos : self._pos])
        magic = self._data[pos + 16]
        last, timestamp = offset, -1  # a v0/v1 wrapper message carries its last inner offset
        if magic >= 2:
            delta, timestamp = struct.unpack_from(">iq", self._data, pos + 23)
            last = offset + delta
        elif magic == 1:
            timestamp = struct.unpack_from(">q", self._data, pos + 18)[0]
        name = CODEC_NAMES.get(codec, f"{codec:#04x}")
        reason = f"codec {name}: {type(exc).__name__}: {exc}"
        UNDECODABLE_BATCHES.labels(self.topic, name).inc()
        UNDECODABLE_RECORDS.labels(self.topic).inc(last - offset + 1)
        log.error(
            "undecodable record batch on %s[%d] offsets %d..%d (%s); kept as one rejected record of its %d bytes at offset %d",
            self.topic, self.partition, offset, last, reason, len(raw), offset,
        )  # fmt: skip
        return _Record(offset, timestamp, raw, reason)


_installed = False


def undecodable(message: Any) -> str:
    """The reason a stand-in record carries (empty for every ordinary record)."""
    for name, value in getattr(message, "headers", None) or ():
        if name == UNDECODABLE_HEADER:
            return bytes(value).decode("utf-8", "replace")
    return ""


def guard_fetcher() -> None:
    """Make aiokafka's fetcher decode through ``GuardedRecords`` (idempotent, process-wide)."""
    global _installed
    if _installed:
        return
    from aiokafka.consumer import fetcher

    # the guard replaces two internals of aiokafka's fetcher (checked against 0.14): if a release
    # moves them, fail at start rather than run unguarded
    if not hasattr(fetcher, "MemoryRecords") or not hasattr(fetcher, "PartitionRecords"):
        raise ConfigError(
            "this aiokafka has no fetcher.MemoryRecords/PartitionRecords: streams/codecs.py needs updating"
        )
    original_init = fetcher.PartitionRecords.__init__

    def init(self: Any, tp: Any, records: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(records, GuardedRecords):
            records.topic, records.partition = tp.topic, tp.partition
        original_init(self, tp, records, *args, **kwargs)

    fetcher.MemoryRecords = GuardedRecords
    fetcher.PartitionRecords.__init__ = init
    _installed = True


def install() -> None:
    """What a worker calls once at start: every codec importable, and the fetcher guarded."""
    check_codecs()
    guard_fetcher()
