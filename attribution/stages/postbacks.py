"""The postback stage (SPEC 7): what is reported back to the ad platform of each campaign click.

Keyed by the source click's event_id. A click's key hears, from the router,
the click's ``callback`` (``CallbackIn``) and, from the user stage, what each
user it acquired has converted (``ConversionsIn``, the latest version per
user; an empty one when the user's source moved away). Partition-wide, in
band: the data's clock (``ClockIn``, the greatest event ts routed) and the
campaigns' rules and platforms (``ConfigIn`` winners from the config stage).

Conversions: ``activate`` once per user (at the user's earliest redirect),
``pay`` for each counted payment. Each is decided once the clock reaches its
ts plus the settle delay, from what is known then, and the decision is final:

- the rule is the campaign's ``postback_rule`` among versions with ts up to
  that moment (SPEC 7: "from the events with ts up to that moment"; a later
  version already received does not count), else activate and every_pay at
  ratio 1; the platform likewise from the campaign's versions;
- kinds first (``held_kind``), then ``min_amount`` (``held_min_amount``, pays
  only), then ``send_ratio`` by SHA-256 of the order_id (``held_ratio``,
  pays only), else ``send``;
- a click without a callback waits: its conversions are decided when the
  callback arrives (if never, never).

Decisions are made only when a ``ClockIn`` is applied, never when a
conversion arrives: the router sends the clock after the batch whose
consequences the user stage is still computing, so deciding on arrival
would decide on a state a moment old (a user whose better click is one
record away). Replay's driver delivers a batch's clock once every stage has
settled (attribution/stages/local.py); in streaming, the stages ahead of this
one must keep up within the settle delay, or the decisions are made, like
those about late events, from less than SPEC's events up to that moment.

When a decided conversion leaves the click (its user moved to another
source, or a payment no longer counts), its decision becomes ``superseded``
(same key, a later version); the new click decides its own under its own
keys. If it comes back, its decision is restored (not sent again).
Each ``send`` also goes to the sender (``SendPostback`` on ``postbacks``).
"""

from __future__ import annotations

import hashlib
import heapq
import pickle
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from attribution.clock import TICKS_PER_SECOND, TICKS_PER_US
from attribution.outputs import PostbackDecision
from attribution.policy import Policy
from attribution.stages.base import CONFIG_KEY, Stage
from attribution.stages.facts import Fact
from attribution.stages.records import (
    CAMPAIGN,
    POSTBACKS,
    RULE,
    CallbackIn,
    ClockIn,
    ConfigIn,
    ConversionsIn,
    Emit,
    SendPostback,
    StageRecord,
)

DEFAULT_SETTLE_S = 600
# The campaign's platform -> the sender that posts back to it ("" : none does).
SENDERS = {"douyin": "oceanengine", "tencent": "tencent", "kuaishou": "kuaishou"}
DEFAULT_KINDS: tuple[str, ...] = ("activate", "every_pay")
ACTIVATE, PAY = "activate", "pay"
SEND, HELD_KIND, HELD_MIN_AMOUNT, HELD_RATIO, SUPERSEDED = (
    "send", "held_kind", "held_min_amount", "held_ratio", "superseded",
)  # fmt: skip
ZERO = Decimal(0)
_TWO_64 = 1 << 64

Item = tuple[str, str]  # (activate, user_id) | (pay, order_id): one conversion of a click


def idempotency_key(platform: str, callback: str, kind: str, order_or_user: str) -> str:
    """SPEC 7's idempotency key (platform, callback, kind, order id or user id), as SHA-256 hex."""
    text = f"{platform}|{callback}|{kind}|{order_or_user}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def in_share(order_id: str, ratio: Decimal) -> bool:
    """SPEC 7's 扣量: the first 8 bytes of SHA-256 of the UTF-8 order_id, big-endian, over 2^64, below ``ratio``."""
    digest = hashlib.sha256(order_id.encode("utf-8", "surrogatepass")).digest()
    return Fraction(int.from_bytes(digest[:8], "big"), _TWO_64) < Fraction(ratio)  # exact: no rounding


class Conversion(NamedTuple):
    """One conversion of a click, as known now."""

    kind: str  # activate | pay
    user_id: str
    order_id: str  # "" for activate
    amount: Decimal  # reporting currency; 0 for activate
    ts: int  # ticks (a payment's: its microsecond, the unit the user stage sends)
    first: bool  # pay: the user's first counted payment (by ts, then event_id)


@dataclass(slots=True)
class ClickState:
    callback: CallbackIn | None = None
    users: dict[str, ConversionsIn] = field(default_factory=dict)  # the latest per user; empty: moved away
    made: dict[Item, PostbackDecision] = field(default_factory=dict)  # decisions as made (final)
    rows: dict[Item, PostbackDecision] = field(default_factory=dict)  # what was last emitted per item


def conversions(state: ClickState) -> dict[Item, Conversion]:
    """The click's conversions now: each of its users' activate and counted payments (an order once)."""
    out: dict[Item, Conversion] = {}
    for user_id, record in sorted(state.users.items()):
        if not record.campaign_id:
            continue
        out[(ACTIVATE, user_id)] = Conversion(ACTIVATE, user_id, "", ZERO, record.acquired_ts, False)
        first = min(((ts, event_id) for _, event_id, ts, _ in record.payments), default=None)
        for order_id, event_id, ts_us, value in record.payments:
            item = (PAY, order_id)
            if item not in out:  # an order moving between two users of this click: one pay
                is_first = (ts_us, event_id) == first
                out[item] = Conversion(PAY, user_id, order_id, value, ts_us * TICKS_PER_US, is_first)
    return out


class PostbackStage(Stage[ClickState]):
    name = "postback"

    def __init__(self, policy: Policy, settle_s: float = DEFAULT_SETTLE_S) -> None:
        super().__init__(policy)
        self.settle = int(Decimal(str(settle_s)) * TICKS_PER_SECOND)  # ticks
        self.clock = 0  # ticks: the greatest ClockIn
        # campaign -> its versions received (rules: kinds, min_amount, send_ratio; campaigns: platform, …)
        self.rules: dict[str, list[ConfigIn]] = {}
        self.campaigns: dict[str, list[ConfigIn]] = {}
        self._due: list[tuple[int, str]] = []  # (ticks, key): look at key once the clock reaches ticks

    # ------------------------------------------------------------ records

    def _apply(self, record: StageRecord, at: int) -> None:
        if isinstance(record, ClockIn):
            if record.ts > self.clock:
                self.clock = record.ts
                self.config_touched()
            due = self._due
            while due and due[0][0] <= self.clock:
                _, key = heapq.heappop(due)
                self.touch(key, at)
        elif isinstance(record, ConversionsIn):
            state = self._state(record.click_event_id)
            held = state.users.get(record.user_id)
            if held is None or record.version > held.version:
                state.users[record.user_id] = record
                self._look_next_clock(record.click_event_id)
        elif isinstance(record, CallbackIn):
            state = self._state(record.click_event_id)
            if state.callback is None:  # copies of one click carry one callback; the first is kept
                state.callback = record
                self._look_next_clock(record.click_event_id)
        elif isinstance(record, ConfigIn) and record.kind in (RULE, CAMPAIGN):
            versions = (self.rules if record.kind == RULE else self.campaigns).setdefault(record.key, [])
            if all(v.event_id != record.event_id for v in versions):  # a broadcast may be sent again
                versions.append(record._replace(origin=""))
                versions.sort(key=lambda v: v.version)
                self.config_touched()

    def _state(self, key: str) -> ClickState:
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = ClickState()
        return state

    def _look_next_clock(self, key: str) -> None:
        """The key changed: look at it when the next clock arrives (decisions wait for one, see above)."""
        heapq.heappush(self._due, (0, key))
        self.keep(key)

    # ------------------------------------------------------------ decisions

    def _recompute(self, key: str, at: int) -> None:
        state = self.keys[key]
        callback = state.callback
        if callback is None:
            return  # waits for its callback (CallbackIn pushes the key again)
        now = conversions(state)
        waiting: int | None = None
        for item, conversion in now.items():
            made = state.made.get(item)
            if made is None:
                deadline = conversion.ts + self.settle
                if deadline > self.clock:
                    waiting = deadline if waiting is None else min(waiting, deadline)
                    continue
                made = state.made[item] = self._decide(key, callback, conversion, deadline)
                self._emit(state, item, made, at)
                if made.decision == SEND:
                    self.emits.append(Emit(POSTBACKS, SendPostback(made)))
            elif state.rows[item] != made:  # superseded, and back: the decision stands again
                self._emit(state, item, made, at)
        for item, row in list(state.rows.items()):
            if item not in now and row.decision != SUPERSEDED:
                held = state.users.get(row.user_id)
                moved = held is None or not held.campaign_id
                why = "the user's source moved to another click" if moved else "the payment no longer counts here"
                detail = f"{why}; was {row.decision}: {row.detail}"
                self._emit(state, item, row._replace(decision=SUPERSEDED, detail=detail), at)
        if waiting is not None:
            heapq.heappush(self._due, (waiting, key))

    def _emit(self, state: ClickState, item: Item, row: PostbackDecision, at: int) -> None:
        state.rows[item] = row
        self.facts.append(Fact("postback", at, row))

    def _decide(self, key: str, callback: CallbackIn, c: Conversion, deadline: int) -> PostbackDecision:
        campaign_id = callback.campaign_id
        decision, detail = self._verdict(campaign_id, c, deadline)
        campaign = _as_of(self.campaigns.get(campaign_id), deadline)
        platform = SENDERS.get(str(campaign.values[0]), "") if campaign is not None else ""
        return PostbackDecision(
            idempotency_key(platform, callback.callback, c.kind, c.order_id or c.user_id), platform, campaign_id,
            key, callback.callback, c.user_id, c.order_id, c.kind, c.amount, c.ts // TICKS_PER_US,
            self.clock // TICKS_PER_US, decision, detail,
        )  # fmt: skip

    def _verdict(self, campaign_id: str, c: Conversion, deadline: int) -> tuple[str, str]:
        """(decision, which part of the rule) for one conversion, by the rule as of ``deadline``."""
        kinds, minimum, ratio, whose = _parts(_as_of(self.rules.get(campaign_id), deadline))
        if c.kind == ACTIVATE:
            if ACTIVATE in kinds:
                return SEND, f"{whose}: activate"
            return HELD_KIND, f"{whose}: kinds {', '.join(kinds) or 'none'} leave out activate"
        if "every_pay" in kinds:
            part = "every_pay"
        elif "first_pay" in kinds and c.first:
            part = "first_pay"
        elif "first_pay" in kinds:
            return HELD_KIND, f"{whose}: first_pay only, and this is not the user's first pay"
        else:
            return HELD_KIND, f"{whose}: kinds {', '.join(kinds) or 'none'} leave out pay"
        if minimum is not None and c.amount < minimum:
            return HELD_MIN_AMOUNT, f"{whose}: {part}, amount {c.amount} below min_amount {minimum}"
        if not in_share(c.order_id, ratio):
            return HELD_RATIO, f"{whose}: {part}, order outside send_ratio {ratio}"
        return SEND, f"{whose}: {part}" + (f", within send_ratio {ratio}" if ratio < 1 else "")

    # -------------------------------------------------------- checkpoints

    def _encode_config(self) -> bytes:
        return pickle.dumps((self.clock, self.rules, self.campaigns), protocol=5)

    def restore(self, entries: dict[str, bytes]) -> None:
        rest = dict(entries)
        blob = rest.pop(CONFIG_KEY, None)
        if blob is not None:
            self.clock, self.rules, self.campaigns = pickle.loads(blob)
        super().restore(rest)

    def _reindex(self) -> None:
        """The clock index from the keys: when each key with a callback has something to decide or mend."""
        self._due = []
        for key, state in self.keys.items():
            if state.callback is None:
                continue
            now = conversions(state)
            pending = [c.ts + self.settle for item, c in now.items() if item not in state.made]
            if any(state.rows.get(i) not in (None, state.made.get(i)) for i in now) or any(
                i not in now and r.decision != SUPERSEDED for i, r in state.rows.items()
            ):
                pending.append(0)
            if pending:
                self._due.append((min(pending), key))
        heapq.heapify(self._due)

    def wants_clock(self) -> bool:
        """Something arrived since the last clock that the clock already makes decidable.

        Decisions wait for a ``ClockIn``; when the router has nothing more to
        route, none comes. The streaming runtime then sends the partition its
        own clock again once its input has been quiet (streams/stages.py).
        """
        return self.clock > 0 and bool(self._due) and self._due[0][0] <= self.clock

    def size(self) -> dict[str, int]:
        return {"keys": len(self.keys), "waiting": len(self._due)}


def _parts(rule: ConfigIn | None) -> tuple[tuple[str, ...], Decimal | None, Decimal, str]:
    """A rule's kinds, min_amount, send_ratio, and how the ledger names it; SPEC 7's default without one."""
    if rule is None:
        return DEFAULT_KINDS, None, Decimal(1), "no rule (activate, every_pay)"
    kinds, minimum, ratio = rule.values
    assert isinstance(kinds, tuple) and isinstance(ratio, Decimal)
    assert minimum is None or isinstance(minimum, Decimal)
    return kinds, minimum, ratio, f"rule {rule.event_id}"


def _as_of(versions: list[ConfigIn] | None, ticks: int) -> ConfigIn | None:
    """The winner (greatest ts, then event_id) among the versions with ts up to ``ticks``."""
    found = None
    for version in versions or ():
        if version.ts <= ticks:
            found = version  # sorted by (ts, event_id)
    return found
