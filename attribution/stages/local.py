"""Every stage in one process, one partition each: the driver of replay and reattribute.

Records are handed on in memory (no encoding), in the same records the Kafka
runtime sends through the stage topics, and each stage numbers its input as a
partition would. A batch of input records runs to quiescence: every queue is
drained, in rounds, until none holds anything, and the batch's facts are
returned. Streaming runs the same stage classes (streams/stages.py), so replay
and streaming cannot disagree on a rule.

Postbacks (SPEC 7) are not decided by replay or reattribute: the postback
stage runs, but nothing feeds it conversions (it keeps only the campaigns'
rules and platforms). A decision is made once, at the data clock of its
moment, from what was known then, and what was sent cannot be unsent; a
replay reads the history in large batches, so its clock would jump and
decide every conversion at once from everything, and the ledger
(postback_decisions, postback_deliveries) is not a derived table: a replay
leaves it as it is. ``LocalPipeline(policy, extra={POSTBACK: stage})`` turns
the feeding on (tests, and what-if runs of a rule): then a batch's clock
(``ClockIn``) is handed to the postback stage only once every other stage
has settled, as if the stages kept up with the router within the settle
delay, and the ``send`` records for the sender are kept in ``outbound``.
"""

from __future__ import annotations

from collections.abc import Iterable

from attribution.outputs import EVENT_ID_DUPLICATE
from attribution.policy import Policy
from attribution.stages.base import Stage
from attribution.stages.config import ConfigStage
from attribution.stages.facts import Fact
from attribution.stages.orders import OrderStage
from attribution.stages.postbacks import DEFAULT_SETTLE_S, PostbackStage
from attribution.stages.records import CONFIG, ORDER, POSTBACK, SPEND, TOUCH, USER, ClockIn, Emit, StageRecord
from attribution.stages.router import Router
from attribution.stages.spend import SpendStage
from attribution.stages.touch import TouchStage
from attribution.stages.users import UserStage
from schemas.framing import Record

# Upstream first, so that most rounds end with the user stage holding all it needs.
ROUND = (CONFIG, TOUCH, ORDER, SPEND, USER, POSTBACK)


def stages_for(policy: Policy, postbacks: bool = False, settle_s: float = DEFAULT_SETTLE_S) -> dict[str, Stage]:  # type: ignore[type-arg]
    """One fresh stage of each kind, by the topic it reads (``postbacks``: the user stage feeds SPEC 7's)."""
    return {
        CONFIG: ConfigStage(policy),
        TOUCH: TouchStage(policy),
        ORDER: OrderStage(policy),
        SPEND: SpendStage(policy),
        USER: UserStage(policy, conversions=postbacks),
        POSTBACK: PostbackStage(policy, settle_s),
    }


class LocalPipeline:
    """``process(records)`` → the facts that batch changed, after every stage has settled."""

    def __init__(self, policy: Policy, extra: dict[str, Stage] | None = None) -> None:  # type: ignore[type-arg]
        """``extra``: more stages by the topic they read, run after the others (the postback stage)."""
        postbacks = POSTBACK in (extra or {})
        self.router = Router(policy, postbacks=postbacks)
        self.stages = {**stages_for(policy, postbacks), **(extra or {})}
        for stage in self.stages.values():
            stage.tracking = False  # no checkpoints here: nothing needs the changed keys
        self.round = (*ROUND, *(t for t in extra or {} if t not in ROUND))
        self._queues: dict[str, list[StageRecord]] = {topic: [] for topic in self.round}
        self._next = dict.fromkeys(self.round, 1)  # positions start at 1: the router's facts have version 0
        self.events = 0
        self.duplicates = 0
        self.outbound: list[Emit] = []  # records for topics no stage here reads (the sender's postbacks)

    def process(self, records: Iterable[Record]) -> list[Fact]:
        facts, emits = self.router.route(records)
        clocks = [e for e in emits if isinstance(e.record, ClockIn)]
        self._enqueue([e for e in emits if not isinstance(e.record, ClockIn)])
        while any(self._queues.values()) or clocks:
            if not any(self._queues.values()):  # every stage has settled: now the batch's clock
                self._enqueue(clocks)
                clocks = []
            for topic in self.round:
                queue = self._queues[topic]
                if not queue:
                    continue
                self._queues[topic] = []
                stage = self.stages[topic]
                at = self._next[topic]
                for record in queue:
                    stage.apply(record, at)
                    at += 1
                self._next[topic] = at
                stage_facts, stage_emits = stage.flush()
                facts.extend(stage_facts)
                self._enqueue(stage_emits)
        for fact in facts:
            if fact.kind == "event":
                self.events += 1
            elif fact.kind == "duplicate" and fact.row.kind == EVENT_ID_DUPLICATE:
                self.duplicates += 1
                self.events -= 1
        return facts

    def _enqueue(self, emits: list[Emit]) -> None:
        queues = self._queues
        for emit in emits:
            queue = queues.get(emit.topic)
            if queue is None:
                self.outbound.append(emit)
            else:
                queue.append(emit.record)
