"""The config stage (one partition): the winning version of every configuration key.

SPEC 2: for one key the greatest ``ts`` wins, ties to the greater
``event_id``. Each change of a winner becomes a fact (campaign, plan and fx
rows) and is broadcast, in band, to every partition of the stages whose
outputs depend on it: fx rates to the order, user and spend stages, plans to
the user stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from attribution.outputs import CampaignRow, FxRow, PlanRow
from attribution.stages.base import Stage
from attribution.stages.facts import Fact
from attribution.stages.records import (
    BROADCAST,
    CAMPAIGN,
    FX,
    ORDER,
    PLAN,
    POSTBACK,
    RULE,
    SPEND,
    USER,
    ConfigIn,
    Emit,
    StageRecord,
)

# Postbacks (SPEC 7) need each campaign's rule, and its platform for the sender and the idempotency key.
_READERS = {FX: (ORDER, USER, SPEND), PLAN: (USER,), CAMPAIGN: (POSTBACK,), RULE: (POSTBACK,)}


@dataclass(slots=True)
class ConfigState:
    seen: dict[str, str] = field(default_factory=dict)
    winner: ConfigIn | None = None


class ConfigStage(Stage[ConfigState]):
    name = "config"

    def _apply(self, record: StageRecord, at: int) -> None:
        assert isinstance(record, ConfigIn)
        key = f"{record.kind}|{record.key}"  # a campaign and a plan may share an id
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = ConfigState()
        if not self.first_copy(state.seen, record.event_id, record.origin, at):
            return
        self.touch(key, at)  # the seen set changed: checkpoint it
        if record.kind == FX and record.values[0] == self.policy.currency:
            return  # SPEC 3.6: a rate for the reporting currency is ignored
        if state.winner is None or record.version > state.winner.version:
            changed = state.winner is None or state.winner.values != record.values
            state.winner = record
            if changed:
                self._publish(record, at)

    def _recompute(self, key: str, at: int) -> None:
        """Winners are published as they change (``apply``); nothing is derived later."""

    def _publish(self, winner: ConfigIn, at: int) -> None:
        v = winner.values
        if winner.kind == CAMPAIGN:
            row: CampaignRow | PlanRow | FxRow = CampaignRow(
                winner.key, str(v[0]), str(v[1]), str(v[2]), str(v[3] or "")
            )
            self.facts.append(Fact("campaign", at, row))
        elif winner.kind == PLAN:
            assert isinstance(v[2], Decimal)
            self.facts.append(Fact("plan", at, PlanRow(winner.key, str(v[0]), str(v[1]), v[2])))
        elif winner.kind == FX:
            assert isinstance(v[1], date) and isinstance(v[2], Decimal)
            self.facts.append(Fact("fx", at, FxRow(str(v[0]), v[1], v[2])))
        for topic in _READERS.get(winner.kind, ()):
            self.emits.append(Emit(topic, winner._replace(origin=""), BROADCAST))
