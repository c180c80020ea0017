"""Where the topics are and how consumers batch: ``REELROI_KAFKA_*``."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """``REELROI_KAFKA_*``: where the topics are and how the workers and the sink batch."""

    model_config = SettingsConfigDict(env_prefix="REELROI_KAFKA_", extra="ignore")

    bootstrap: str = "127.0.0.1:9092"
    exit_when_idle_s: float = 0.0  # benchmarks: stop after this long without records, write stats
    stats_path: str = ""
    topic_prefix: str = "reelroi."
    group: str = "reelroi-attribution"
    partitions: int = 6
    # Kafka messages per agent batch: a batched message holds up to 1,000 lines, so this bounds
    # a batch (and a worker's buffers) at about 256k events, or 256 single-event messages
    batch_max: int = 256
    batch_within_s: float = 0.2  # per hop: the router, each stage, then the sink
    rebalance_timeout_s: float = 6.0
