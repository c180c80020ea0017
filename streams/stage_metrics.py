"""Prometheus metrics of the attribution stages (docs/alerts.md lists them with their alerts).

Labels are stage names (a closed set), consumer groups, topics and partition numbers.
``observe_lag`` sets the consumer lag of what a process holds (workers and the sink call it from a timer).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from schemas.events import EVENT_TYPES
from streams import metrics as _pipeline_metrics

_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

ROUTED = Counter("reelroi_router_records", "Input records framed, decoded and routed by the router")
SEND_FAILURES = Counter("reelroi_stage_send_failures", "Failed sends of stage outputs (retried whole)")
RECORDS = Counter("reelroi_stage_messages", "Stage-topic messages applied, by stage", ["stage"])
BAD_LINES = Counter(
    "reelroi_stage_bad_lines", "Stage records that did not decode (a bug upstream; the line is skipped)", ["stage"]
)
REREADS = Counter(
    "reelroi_stage_rereads",
    "Messages past a stage state's position: the ones between read from the log and applied first",
    ["stage"],
)
LOG_HOLES = Counter("reelroi_stage_log_holes", "Stage partitions whose log lacked records a state needed", ["stage"])
BATCH_SECONDS = Histogram("reelroi_stage_batch_seconds", "Apply, deliver and checkpoint time per batch", ["stage"],
                          buckets=_SECONDS)  # fmt: skip
LOADS = Histogram("reelroi_stage_load_seconds", "Time to load a partition's checkpoint on taking it", ["stage"],
                  buckets=_SECONDS)  # fmt: skip
SAVES = Histogram("reelroi_stage_save_seconds", "Time to save a partition's checkpoint", ["stage"], buckets=_SECONDS)
CHECKPOINTED = Gauge(
    "reelroi_stage_checkpoint_timestamp_seconds", "When a held partition was last checkpointed", ["stage", "partition"]
)
KEYS = Gauge("reelroi_stage_keys", "Keys held in a partition's state", ["stage", "partition"])


# streams/metrics.py still defines reelroi_consumer_lag{topic,partition} for the leader/intake worker
# that is being removed. This gauge (with the group) takes the name in the default registry; drop these
# lines when that definition goes.
_old_lag = getattr(_pipeline_metrics, "LAG", None)
if _old_lag is not None:
    REGISTRY.unregister(_old_lag)
LAG = Gauge(
    "reelroi_consumer_lag",
    "Records of a held partition not yet committed by its consumer group (behind the high watermark)",
    ["group", "topic", "partition"],
)
_lag_labels: dict[str, set[tuple[str, str]]] = {}  # per group: the label sets this process reports


async def observe_lag(app: Any, group: str) -> None:
    """Set ``reelroi_consumer_lag`` for every partition ``app`` holds, as consumer group ``group``.

    Lag is the partition's high watermark minus the group's committed offset
    (a stage commits only what a checkpoint covers), or minus the consumer's
    position while nothing is committed yet. Partitions this process no longer
    holds (moved in a rebalance) lose their series, so two processes never
    report one partition for long. Call it from a timer, every few seconds.
    """
    consumer = app.consumer
    committed = getattr(consumer, "_committed_offset", {})  # faust's own record of what it committed
    held: set[tuple[str, str]] = set()
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:  # not fetched yet
            continue
        position = committed.get(tp)
        if position is None:
            position = await consumer.position(tp) or 0
        labels = (tp.topic, str(tp.partition))
        LAG.labels(group, *labels).set(max(0, highwater - position))
        held.add(labels)
    for labels in _lag_labels.get(group, set()) - held:
        LAG.remove(group, *labels)
    _lag_labels[group] = held


_KNOWN_TYPES = frozenset(EVENT_TYPES)


def event_type(kind: str) -> str:
    """A label from a closed set: an event type, or ``unknown`` (a rejected line's type is whatever it said)."""
    return kind if kind in _KNOWN_TYPES else "unknown"


BORN_HEADER = "reelroi-born"  # on every internal message: when its oldest input record reached Kafka (ms)


def born_at(message: Any) -> float | None:
    """When the oldest input record behind ``message`` was appended to Kafka (seconds), if it says."""
    for name, value in getattr(message, "headers", None) or ():
        if name == BORN_HEADER:
            try:
                return int(bytes(value)) / 1000
            except ValueError:
                return None
    return None


def born_of(messages: Any) -> float | None:
    """The oldest origin of a batch: each message's ``born_at``, else its own Kafka timestamp."""
    found = [b if (b := born_at(m)) is not None else m.timestamp for m in messages if m.timestamp or born_at(m)]
    return min(found) if found else None
