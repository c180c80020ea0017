"""What every keyed stage shares: keyed state, outputs decided per record, checkpoints.

A stage partition's state is a dict of small per-key objects. ``apply`` takes
one input record at its position (offset·2^20 + line, see ``position``),
marks the keys whose outputs it may change and recomputes them at once, so
that what is emitted, and under which version, is decided record by record:
an output is emitted when the record changes it, versioned by the record's
position. Batch boundaries therefore change nothing. A process that crashed
after emitting, and its successor re-reading the tail in other batches, or a
zombie still finishing a batch, emit the same values under the same versions,
and the greatest version of every key is its value after the whole partition
(docs/design/streaming.md section 2).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, Generic, TypeVar

from attribution.fx import FxTable
from attribution.orders import DUPLICATE, Verdict
from attribution.outputs import (
    EVENT_ID_DUPLICATE,
    ORDER_DUPLICATE,
    ORDER_KEY_PREFIX,
    STATE_KEY_PREFIX,
    Duplicate,
    Rejection,
)
from attribution.policy import Policy
from attribution.stages.facts import Fact
from attribution.stages.records import FX, PLAN, ConfigIn, Emit, StageRecord
from attribution.state import PlanConfig

LINE_BITS = 20  # lines per Kafka message, at most 2^20 (a 1 MiB line limit makes far fewer possible)
CONFIG_KEY = "~config"  # the checkpoint entry of a partition's configuration (no real key starts with ~?)


def position(offset: int, line: int) -> int:
    """The version of what line ``line`` of the message at ``offset`` caused."""
    return (offset << LINE_BITS) | line


class PartitionConfig:
    """The configuration a partition has received in band: fx rates and plans."""

    __slots__ = ("fx", "plans")

    def __init__(self, policy: Policy) -> None:
        self.fx = FxTable(policy.currency)
        self.plans: dict[str, PlanConfig] = {}


S = TypeVar("S")


class Stage(Generic[S]):
    """A keyed stage partition. Subclasses define ``apply`` and ``_recompute``."""

    name = ""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.keys: dict[str, S] = {}
        self.config = PartitionConfig(policy)
        self._dirty: dict[str, int] = {}
        self._changed: set[str] = set()
        self.tracking = True  # remember changed keys for checkpoints (replay, which takes none, turns it off)
        self.deferred = False  # recompute only in ``recompute_deferred`` (a replay pass, which writes only final facts)
        self._config_changed = False
        self.facts: list[Fact] = []
        self.emits: list[Emit] = []

    # ------------------------------------------------------------ batches

    def apply(self, record: StageRecord, at: int) -> None:
        """Take one record into state and emit what it changed, at version ``at``."""
        self._apply(record, at)
        if self._dirty and not self.deferred:
            dirty, self._dirty = self._dirty, {}
            for key in dirty:
                self._recompute(key, at)

    def recompute_deferred(self) -> None:
        """Deferred mode: recompute every key touched since, once, at the version of the last record that touched it.

        A key's outputs are a function of its state, which after the same records is the same whenever
        the recomputing happens: only the intermediate values a per-record recompute emits are skipped.
        """
        while self._dirty:
            dirty, self._dirty = self._dirty, {}
            for key, at in dirty.items():
                self._recompute(key, at)

    def apply_all(self, records: Iterable[tuple[StageRecord, int]]) -> None:
        for record, at in records:
            self.apply(record, at)

    def _apply(self, record: StageRecord, at: int) -> None:
        raise NotImplementedError

    def needed(self, records: list[StageRecord]) -> list[StageRecord]:
        """Of all the records a fresh stage will ever take (a replay pass over a bucket), those that can change an output.

        A stage whose keys can be idle overrides this (the touch stage): the records it drops, applied,
        would change no fact and emit nothing, so the pass's facts and emits are the same without them.
        """
        return records

    def touch(self, key: str, at: int) -> None:
        """``key``'s outputs may have changed because of the record at ``at``: recompute it."""
        self._dirty[key] = at
        if self.tracking:
            self._changed.add(key)

    def keep(self, key: str) -> None:
        """``key``'s state changed but not its outputs (a later redirect, a duplicate's origin): checkpoint it."""
        if self.tracking:
            self._changed.add(key)

    def first_copy(self, seen: dict[str, str], event_id: str, origin: str, at: int, counts: bool = True) -> bool:
        """True for an event's first copy; a duplicate is counted (once per copy) where ``counts``.

        ``seen`` holds a key's event ids with the origin of each first copy: a copy with the first copy's
        origin is the same record delivered again (a router re-sent its batch after a crash), ignored,
        not a duplicate. Without checkpoints (replay) nothing is delivered twice: no origins are kept,
        only the ids, so every later copy is a duplicate.
        """
        first = seen.get(event_id)
        if first is None:
            seen[event_id] = origin if self.tracking else ""
            return True
        if first and first == origin:
            return False  # the same record delivered again
        if counts:
            self.facts.append(Fact("duplicate", at, Duplicate(origin, EVENT_ID_DUPLICATE, event_id, origin)))
        return False

    def config_touched(self) -> None:
        self._config_changed = True

    def flush(self) -> tuple[list[Fact], list[Emit]]:
        """Return (and forget) the outputs of the records applied since the last call."""
        facts, emits = self.facts, self.emits
        self.facts, self.emits = [], []
        return facts, emits

    def _recompute(self, key: str, at: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------ configuration

    def apply_config(self, record: ConfigIn, at: int) -> None:
        """A broadcast configuration winner: keep it if newer, and re-answer what it changes."""
        config = self.config
        if record.kind == FX:
            currency, effective, rate = record.values[0], record.values[1], record.values[2]
            assert isinstance(currency, str) and isinstance(effective, date) and isinstance(rate, Decimal)
            self.config_touched()  # even a newer version of the same rate is kept: an older one must not win
            if config.fx.upsert(currency, effective, record.version, rate):
                self.rate_changed(currency, effective, at)
        elif record.kind == PLAN:
            creator, drama, share = record.values[0], record.values[1], record.values[2]
            assert isinstance(creator, str) and isinstance(drama, str) and isinstance(share, Decimal)
            current = config.plans.get(record.key)
            if current is None or record.version > current.version:
                config.plans[record.key] = PlanConfig(record.version, creator, drama, share)
                self.config_touched()
                self.plan_changed(record.key, at)

    def rate_changed(self, currency: str, since: date, at: int) -> None:
        """Mark the keys with amounts in ``currency`` dated on or after ``since``."""

    def plan_changed(self, plan_id: str, at: int) -> None:
        """Mark the keys whose outputs use plan ``plan_id``."""

    def set_verdict(
        self, verdicts: dict[str, Verdict], event_id: str, new: Verdict | None, origin: str, type_: str, at: int
    ) -> None:
        """Record whether an event counts, emitting rejection/duplicate rows and their retractions."""
        old = verdicts.get(event_id)
        if old == new:
            return
        if new is None:
            del verdicts[event_id]
        else:
            verdicts[event_id] = new
        old_dup = old is not None and old.reason == DUPLICATE
        new_dup = new is not None and new.reason == DUPLICATE
        if old is not None and old_dup and not new_dup:
            dup = Duplicate(ORDER_KEY_PREFIX + event_id, ORDER_DUPLICATE, event_id, origin, False)
            self.facts.append(Fact("duplicate", at, dup))
        if old is not None and not old_dup and (new is None or new_dup):
            gone = Rejection(STATE_KEY_PREFIX + event_id, old.reason, "", event_id, type_, origin, b"", False)
            self.facts.append(Fact("rejection", at, gone))
        if new is not None:
            if new_dup:
                dup = Duplicate(ORDER_KEY_PREFIX + event_id, ORDER_DUPLICATE, event_id, origin)
                self.facts.append(Fact("duplicate", at, dup))
            else:
                rejection = Rejection(STATE_KEY_PREFIX + event_id, new.reason, new.detail, event_id, type_, origin, b"")
                self.facts.append(Fact("rejection", at, rejection))

    # -------------------------------------------------------- checkpoints

    def changed(self) -> dict[str, bytes | None]:
        """The encoded state of every key changed since the last call (None: gone)."""
        out: dict[str, bytes | None] = {}
        for key in self._changed:
            state = self.keys.get(key)
            out[key] = None if state is None else pickle.dumps(state, protocol=5)
        self._changed = set()
        if self._config_changed:
            out[CONFIG_KEY] = self._encode_config()
            self._config_changed = False
        return out

    def unsaved(self, entries: dict[str, bytes | None]) -> None:
        """``changed``'s entries were not saved after all (a checkpoint write failed): changed still."""
        self._changed.update(key for key in entries if key != CONFIG_KEY)
        if CONFIG_KEY in entries:
            self._config_changed = True

    def everything(self) -> dict[str, bytes]:
        out = {key: pickle.dumps(state, protocol=5) for key, state in self.keys.items()}
        out[CONFIG_KEY] = self._encode_config()
        return out

    def restore(self, entries: dict[str, bytes]) -> None:
        """Load a checkpoint's entries (the partition's whole state) into this empty stage."""
        for key, blob in entries.items():
            if key == CONFIG_KEY:
                fx, plans = pickle.loads(blob)
                self.config.fx, self.config.plans = fx, plans
            else:
                self.keys[key] = pickle.loads(blob)
        self._reindex()

    def _encode_config(self) -> bytes:
        return pickle.dumps((self.config.fx, self.config.plans), protocol=5)

    def _reindex(self) -> None:
        """Rebuild the indexes derived from the keys' state (after ``restore``)."""

    def size(self) -> dict[str, Any]:
        return {"keys": len(self.keys)}
