"""Compressed record batches: a real worker (and the sink) attribute batches in every codec, and survive one
they cannot decode."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from kafka import KafkaProducer
from kafka.record import default_records as kafka_records

from reelroi.generator import GeneratorConfig, generate
from streams import codecs
from streams.broker import EmbeddedBroker
from streams.produce import create_topics, produce
from tests.streams.pipeline import Pipeline, replayed_reports, reports, wait_for

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def batch(values: list[bytes], codec: int, base: int) -> bytes:
    """One v2 record batch at offset ``base``; a codec id past 4 is written into an uncompressed batch."""
    builder = DefaultRecordBatchBuilder(2, codec if codec <= 4 else 0, 0, -1, -1, -1, 1 << 20)
    for i, value in enumerate(values):
        builder.append(i, 1_790_000_000_000 + i, None, value, [])
    data = builder.build()
    struct.pack_into(">q", data, 0, base)
    if codec > 4:
        data[22] = (data[22] & ~7) | codec
        struct.pack_into(">I", data, 17, calc_crc32c(bytes(data[21:])))  # a valid CRC: only the codec is wrong
    return bytes(data)


def test_the_guarded_fetcher_turns_an_undecodable_batch_into_one_record_and_goes_on() -> None:
    codecs.guard_fetcher()
    unknown = batch([b"e1", b"e2"], 7, 4)
    data = batch([b"a", b"b"], 0, 0) + batch([b"c", b"d"], 3, 2) + unknown + batch([b"f"], 4, 6) + batch([b"g"], 1, 7)
    before = codecs.UNDECODABLE_BATCHES.labels("t", "0x07")._value.get()
    records = fetcher.PartitionRecords(TopicPartition("t", 0), fetcher.MemoryRecords(data), [], 0, None, None, True, 0)
    got = [(r.offset, r.value, dict(r.headers)) for r in records]
    assert [(o, v) for o, v, _ in got] == [
        (0, b"a"),
        (1, b"b"),
        (2, b"c"),
        (3, b"d"),
        (4, unknown),
        (6, b"f"),
        (7, b"g"),
    ]
    assert "Unknown compression codec 0x07" in got[4][2][codecs.UNDECODABLE_HEADER].decode()
    assert records.next_fetch_offset == 8  # past every batch: nothing is fetched twice
    assert codecs.UNDECODABLE_BATCHES.labels("t", "0x07")._value.get() == before + 1
    assert codecs.UNDECODABLE_RECORDS.labels("t")._value.get() >= 2


def test_every_codec_library_is_importable() -> None:
    assert codecs.missing_codecs() == []
    codecs.check_codecs()


def corrupt_gzip_batch(bootstrap: str, topic: str) -> None:
    """A batch whose attributes say gzip over an uncompressed payload (brokers refuse unknown codec ids)."""
    original = kafka_records.DefaultRecordBatchBuilder.build

    def build(self):  # type: ignore[no-untyped-def]
        data = original(self)
        data[22] = (data[22] & ~7) | 1
        struct.pack_into(">I", data, 17, calc_crc32c(bytes(data[21:])))
        return data

    kafka_records.DefaultRecordBatchBuilder.build = build  # type: ignore[method-assign]
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        # a batch of lines, one of them a complete event: none of it may count, the batch is one rejection
        payment = (
            b'{"type":"payment","event_id":"in-a-bad-batch","ts":"2026-11-01T10:00:00+08:00","order_id":"bad-o",'
            b'"user_id":"bad-u","drama_id":"d","amount":"99","currency":"CNY","kind":"unlock"}'
        )
        producer.send(topic, value=b'{"type":"click"}\n' + payment + b"\n \t\n").get(timeout=30)
        producer.close()
    finally:
        kafka_records.DefaultRecordBatchBuilder.build = original  # type: ignore[method-assign]


@pytest.mark.integration
def test_a_worker_attributes_batches_in_every_codec_and_survives_an_undecodable_one(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=7, days=1, events=1_500, malformed_share=0.01)))
    random.Random(2).shuffle(lines)
    expected = replayed_reports(lines, tmp_path)
    step = len(lines) // len(CODECS) + 1
    with EmbeddedBroker() as broker, Pipeline(tmp_path, broker.bootstrap, "z.") as pipe:
        create_topics(broker.bootstrap, "z.", partitions=2)
        pipe.start(workers=1)
        corrupt_gzip_batch(broker.bootstrap, "z.clicks")  # first, so everything after it must still arrive
        for i, codec in enumerate(CODECS):
            assert produce(broker.bootstrap, "z.", lines[i * step : (i + 1) * step], compression=codec) > 0
        wait_for(lambda: "undecodable record batch on z.clicks" in pipe.tail(10**7), 90, "the undecodable batch")
        assert pipe.drained(180), pipe.tail()
        assert pipe.running(), pipe.tail()  # still up: no crash on any batch
        pipe.stop()
    text = pipe.tail(10**7)
    assert "UnsupportedCodecError" not in text and "Traceback" not in text, text[-3000:]
    got = reports(pipe.dsn, tmp_path)
    assert got["roi"] == expected["roi"]
    assert got["commission"] == expected["commission"]
    # the undecodable batch is the one rejection replay does not have: its bytes are not JSON
    rejected = dict(expected["rejects"]["rejected"])  # type: ignore[index]
    rejected["invalid_json"] = rejected.get("invalid_json", 0) + 1
    assert got["rejects"] == {**expected["rejects"], "rejected": rejected}  # type: ignore[dict-item]
