"""Prometheus metrics of the attribution stages (docs/alerts.md lists them with their alerts).

Labels are stage names (a closed set) and partition numbers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

ROUTED = Counter("reelroi_router_records", "Input records framed, decoded and routed by the router")
SEND_FAILURES = Counter("reelroi_stage_send_failures", "Failed sends of stage outputs (retried whole)")
RECORDS = Counter("reelroi_stage_messages", "Stage-topic messages applied, by stage", ["stage"])
BAD_LINES = Counter(
    "reelroi_stage_bad_lines", "Stage records that did not decode (a bug upstream; the line is skipped)", ["stage"]
)
BATCH_SECONDS = Histogram("reelroi_stage_batch_seconds", "Apply, deliver and checkpoint time per batch", ["stage"],
                          buckets=_SECONDS)  # fmt: skip
LOADS = Histogram("reelroi_stage_load_seconds", "Time to load a partition's checkpoint on taking it", ["stage"],
                  buckets=_SECONDS)  # fmt: skip
SAVES = Histogram("reelroi_stage_save_seconds", "Time to save a partition's checkpoint", ["stage"], buckets=_SECONDS)
CHECKPOINTED = Gauge(
    "reelroi_stage_checkpoint_timestamp_seconds", "When a held partition was last checkpointed", ["stage", "partition"]
)
KEYS = Gauge("reelroi_stage_keys", "Keys held in a partition's state", ["stage", "partition"])
