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
    batch_max: int = 20_000
    batch_within_s: float = 0.5
    rebalance_timeout_s: float = 6.0
