"""``reelroi worker``: one process of the attribution consumer group, running the router and every stage.

No worker opens ClickHouse: facts go to the facts topic and ``reelroi sink``
writes them, so with the embedded database several worker processes run on
one machine beside the one sink that owns it. Adding a worker adds
attribution capacity: the group splits every topic's partitions between its
members, and a stage partition's state moves with the partition (through its
checkpoint, streams/checkpoints.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field

import faust

from attribution.errors import ConfigError
from attribution.policy import Policy
from schemas.framing import DEFAULT_MAX_LINE_BYTES
from streams import stage_metrics as sm
from streams.checkpoints import DirectoryCheckpoints
from streams.codecs import install as install_codecs
from streams.kafka_settings import KafkaSettings
from streams.log_reader import LogReader
from streams.produce import topic_partitions
from streams.stage_runner import StageRunner
from streams.stages import PostbackSettings, StageSettings, build_stages
from streams.topics import all_topics

log = logging.getLogger("reelroi.worker")


def faust_app(settings: KafkaSettings, app_id: str, buffer: int) -> faust.App:
    """A faust app with the settings every reelroi consumer uses (the workers' group and the sink's)."""
    install_codecs()  # every codec decodable, and an undecodable batch becomes a rejection, not a crash
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(64, 2 * buffer),  # per partition, in messages (a batch holds many lines)
        consumer_max_fetch_size=16 * 1024 * 1024,
        broker_max_poll_records=buffer,
        producer_linger=0.005,
        producer_max_request_size=2 * 1024 * 1024,
        # Tansu completes a join only when the rebalance timeout allows; a short
        # one makes start-up and failover take seconds, not a minute
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=1.0,
        # faust would otherwise wait, at a rebalance or shutdown, for every taken record to be
        # acked; records wait for a checkpoint before they are, and SIGTERM must be heard.
        # What is not acked is read again by the next owner, harmlessly.
        stream_wait_empty=False,
    )


@dataclass
class StageWorker:
    app: faust.App
    runners: dict[str, StageRunner]
    batches: dict[str, int] = field(default_factory=dict)
    last_batch_at: float | None = None

    def stats(self) -> dict[str, object]:
        return {"batches": dict(self.batches), "last_batch_at": self.last_batch_at}


def build_worker(
    settings: KafkaSettings,
    policy: Policy,
    stage_settings: StageSettings | None = None,
    max_line: int = DEFAULT_MAX_LINE_BYTES,
    postbacks: PostbackSettings | None = None,
) -> StageWorker:
    """The worker's app with every stage declared; ``postbacks`` default to ``REELROI_POSTBACKS*`` (off)."""
    stage_settings = stage_settings or StageSettings()
    postbacks = postbacks or PostbackSettings()
    app = faust_app(settings, settings.group, settings.batch_max)
    store = DirectoryCheckpoints(stage_settings.state_dir, compact_ratio=stage_settings.compact_ratio)
    worker = StageWorker(app, {})

    def on_batch(stage: str, records: int) -> None:
        worker.batches[stage] = worker.batches.get(stage, 0) + records
        if records:
            worker.last_batch_at = time.time()

    counts = topic_partitions(settings.bootstrap, all_topics(settings.topic_prefix))
    missing = sorted(t for t, n in counts.items() if n == 0)
    if missing:
        raise ConfigError(f"topics missing on {settings.bootstrap}: {', '.join(missing)} (reelroi topics creates them)")
    worker.runners = build_stages(
        app, settings.topic_prefix, counts, policy, store, stage_settings,
        settings.batch_max, settings.batch_within_s, max_line, on_batch, postbacks, LogReader(settings.bootstrap),
    )  # fmt: skip

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def observe() -> None:
        """Consumer lag of the partitions this worker holds (the same figures as ``reelroi lag``)."""
        await sm.observe_lag(app, settings.group)

    if settings.exit_when_idle_s > 0:  # benchmarks: stop once nothing has arrived for this long

        @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
        async def stop_when_idle() -> None:
            last = worker.last_batch_at
            if last is not None and time.time() - last > settings.exit_when_idle_s:
                if settings.stats_path:
                    with open(settings.stats_path, "w", encoding="utf-8") as handle:
                        json.dump(worker.stats(), handle)
                os.kill(os.getpid(), signal.SIGTERM)  # the faust Worker's own clean shutdown

    return worker
