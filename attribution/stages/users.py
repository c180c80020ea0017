"""The user stage: acquisition, source and credit (SPEC 3.1-3.3, 3.6-3.7) for the users of a partition.

A user's redirects and ad unlocks come from the router; what their earliest
redirect's touch keys answered, and what each order that names them means,
come from the touch and order stages. From these the stage derives the
user's fact and money facts exactly as ``Engine._attribute_user`` does, and
emits only what changed, under keys of this user (money by
``(user_id, event_id)``), so that money moving to another user is retracted
here and written there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from attribution.clock import TICKS_PER_US, LocalDates
from attribution.fx import EXACT
from attribution.orders import NO_FX_RATE, PaymentRec, RefundRec, Verdict
from attribution.outputs import MoneyFact, UserFact
from attribution.policy import Policy
from attribution.sources import Redirect, Touch
from attribution.stages.base import Stage
from attribution.stages.facts import Fact
from attribution.stages.records import (
    POSTBACK,
    Answer,
    ConfigIn,
    ConversionsIn,
    Emit,
    OrderResult,
    RedirectIn,
    StageRecord,
    UnlockIn,
)
from attribution.state import UnlockRec

ZERO = Decimal(0)
_new = tuple.__new__  # a NamedTuple's own constructor is a Python function: records and rows made per event
HeldAnswer = tuple[int, Touch | None, Touch | None]  # version, click, impression
HeldOrder = tuple[int, PaymentRec | None, Decimal | None, tuple[RefundRec, ...]]
Conversions = tuple[str, str, int, tuple[tuple[str, str, int, Decimal], ...]]  # click, campaign, acquired, payments
Item = tuple[str, str, tuple[str, ...]]  # ("order", order_id, money ids it had) | ("unlock", event_id, ())


@dataclass(slots=True)
class UserState:
    seen: dict[str, str] = field(default_factory=dict)  # redirect and unlock event_ids -> first origin
    redirect: Redirect | None = None  # the earliest
    answers: dict[tuple[str, str], HeldAnswer] = field(default_factory=dict)  # (redirect_id, slot) -> answer
    orders: dict[str, HeldOrder] = field(default_factory=dict)
    unlocks: list[UnlockRec] = field(default_factory=list)
    emitted: UserFact | None = None
    money: dict[str, MoneyFact] = field(default_factory=dict)  # emitted, by event_id
    converted: Conversions | None = None  # what the postback stage was last told (SPEC 7)
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # unlocks without a rate


class UserStage(Stage[UserState]):
    name = "user"

    def __init__(self, policy: Policy, conversions: bool = False) -> None:
        super().__init__(policy)
        self.conversions = conversions  # tell the postback stage what campaign-click users converted
        self._dates = LocalDates(policy.zone)
        self._by_plan: dict[str, set[str]] = {}
        self._by_unlock_currency: dict[str, set[str]] = {}
        # what the record being applied changed, per user: money items, or None for everything
        self._scope: dict[str, set[Item] | None] = {}

    def _widen(self, user_id: str, item: Item | None) -> None:
        if self.deferred:
            return  # a deferred recompute recomputes everything of the user (``_recompute``)
        if item is None:
            self._scope[user_id] = None
        else:
            scope = self._scope.setdefault(user_id, set())
            if scope is not None:
                scope.add(item)

    def _state(self, user_id: str) -> UserState:
        state = self.keys.get(user_id)
        if state is None:
            state = self.keys[user_id] = UserState()
        return state

    def _apply(self, record: StageRecord, at: int) -> None:
        if isinstance(record, UnlockIn):  # by frequency: unlocks, redirects, answers, order results
            user_id = record.user_id
            state = self.keys.get(user_id)
            if state is None:
                state = self.keys[user_id] = UserState()
            if not self.first_copy(state.seen, record.event_id, record.origin, at):
                return
            state.unlocks.append(
                _new(UnlockRec, (record.ts, record.event_id, record.revenue, record.currency, record.date,
                                 record.origin, b""))
            )  # fmt: skip
            if not self.deferred:  # a deferred recompute recomputes everything of the user
                self._by_unlock_currency.setdefault(record.currency, set()).add(user_id)
                self._widen(user_id, ("unlock", record.event_id, ()))
            self.touch(user_id, at)
        elif isinstance(record, RedirectIn):
            state = self._state(record.user_id)
            if not self.first_copy(state.seen, record.event_id, record.origin, at):
                return
            redirect = Redirect(record.ts, record.event_id, record.click_id, record.device_id)
            if state.redirect is None or redirect < state.redirect:
                state.redirect = redirect
                self.touch(record.user_id, at)
            else:
                self.keep(record.user_id)
        elif isinstance(record, Answer):
            state = self._state(record.user_id)
            slot = (record.redirect_id, record.slot)
            held = state.answers.get(slot)
            if held is None or record.version > held[0]:
                state.answers[slot] = (record.version, record.click, record.impression)
                if state.redirect is not None and state.redirect.event_id == record.redirect_id:
                    self.touch(record.user_id, at)
                else:
                    self.keep(record.user_id)
        elif isinstance(record, OrderResult):
            state = self._state(record.user_id)
            held_order = state.orders.get(record.order_id)
            if held_order is None or record.version > held_order[0]:
                state.orders[record.order_id] = (record.version, record.counted, record.rate, record.refunds)
                self._widen(record.user_id, ("order", record.order_id, _ids(held_order)))
                self.touch(record.user_id, at)
        elif isinstance(record, ConfigIn):
            self.apply_config(record, at)

    def rate_changed(self, currency: str, since: date, at: int) -> None:
        for user_id in self._by_unlock_currency.get(currency, ()):
            for u in self.keys[user_id].unlocks:
                if u.currency == currency and u.date >= since:
                    self._widen(user_id, ("unlock", u.event_id, ()))
                    self.touch(user_id, at)

    def plan_changed(self, plan_id: str, at: int) -> None:
        for user_id in self._by_plan.get(plan_id, ()):
            self._widen(user_id, None)
            self.touch(user_id, at)

    # ------------------------------------------------------------ recompute

    def _acquisition(self, user_id: str, state: UserState) -> UserFact | None:
        """Rules 1-3: the user's source and cohort, or None if the user has nothing that counts."""
        redirect = state.redirect
        if redirect is not None:
            kind, source_id, touch = "organic", "organic", "organic"
            found = False
            if redirect.click_id is not None:
                held = state.answers.get((redirect.event_id, "k"))
                if held is not None and held[1] is not None:
                    kind, source_id, touch, found = held[1].source_kind, held[1].source_id, "click_id", True
            if not found and redirect.device_id is not None:
                held = state.answers.get((redirect.event_id, "d"))
                if held is not None and held[1] is not None:
                    kind, source_id, touch = held[1].source_kind, held[1].source_id, "device"
                elif held is not None and held[2] is not None:
                    kind, source_id, touch = held[2].source_kind, held[2].source_id, "view"
            cohort = self._dates.of_ticks(redirect.ts)
            return _new(UserFact, (user_id, kind, source_id, touch, cohort, redirect.ts // TICKS_PER_US, True))
        earliest: int | None = None
        for _, counted, _, _ in state.orders.values():
            if counted is not None and (earliest is None or counted.ts < earliest):
                earliest = counted.ts
        for unlock in state.unlocks:
            if self.config.fx.rate(unlock.currency, unlock.date) is not None and (
                earliest is None or unlock.ts < earliest
            ):
                earliest = unlock.ts
        if earliest is None:
            return None
        return UserFact(
            user_id, "organic", "organic", "no_redirect", self._dates.of_ticks(earliest), earliest // TICKS_PER_US
        )

    def _recompute(self, user_id: str, at: int) -> None:
        """Emit what the record changed: the user fact, and the money rows in scope (all when the fact moved)."""
        state = self.keys[user_id]
        # Deferred (a replay pass): everything of the user, once, after every record that touched it, so no
        # scope and no indexes are kept: every user with a record in the pass is touched by one of them
        # and recomputed here against the pass's final configuration (rate_changed and plan_changed find none).
        scope: set[Item] | None = None if self.deferred else self._scope.pop(user_id, set())
        fact = self._acquisition(user_id, state)
        previous = state.emitted
        if fact != previous:
            if not self.deferred:
                if previous is not None and previous.source_kind == "plan":
                    self._by_plan.get(previous.source_id, set()).discard(user_id)
                if fact is not None and fact.source_kind == "plan":
                    self._by_plan.setdefault(fact.source_id, set()).add(user_id)
            self.facts.append(_new(Fact, ("user", at, fact if fact is not None else previous._replace(active=False))))  # type: ignore[union-attr]
            state.emitted = fact
            scope = None  # every money row carries the source and cohort
        creator, share = self._commission_rate(fact)
        if scope is None:
            old_ids: set[str] = set(state.money)
            new: dict[str, MoneyFact] = {}
            if fact is not None:
                for order_id in state.orders:
                    self._order_rows(user_id, state, order_id, fact, creator, share, new)
            self._unlock_rows(user_id, state, state.unlocks, fact, at, new)
        else:
            old_ids, new = set(), {}
            unlocks = {u.event_id: u for u in state.unlocks} if any(i[0] == "unlock" for i in scope) else {}
            for kind, key, had in scope:
                if kind == "order":
                    old_ids.update(had)
                    if fact is not None:
                        self._order_rows(user_id, state, key, fact, creator, share, new)
                else:
                    old_ids.add(key)
                    self._unlock_rows(user_id, state, (unlocks[key],), fact, at, new)
        money, facts = state.money, self.facts
        for event_id, row in new.items():
            if money.get(event_id) != row:
                money[event_id] = row
                facts.append(_new(Fact, ("money", at, row)))
        if old_ids:
            for event_id in old_ids - new.keys():
                gone = money.pop(event_id, None)
                if gone is not None:
                    facts.append(Fact("money", at, _retracted(gone)))
        if self.conversions:
            self._convert(user_id, state, fact, at)

    def _convert(self, user_id: str, state: UserState, fact: UserFact | None, at: int) -> None:
        """Tell the source click's key what the user converted; a click the user moved away from hears nothing left."""
        target: Conversions | None = None
        click = self._source_click(state)
        if fact is not None and click is not None and fact.source_kind == "campaign":
            payments = tuple(
                sorted((m.order_id, m.event_id, m.ts_us, m.value) for m in state.money.values() if m.kind == "payment")
            )
            target = (click.event_id, fact.source_id, state.redirect.ts if state.redirect else 0, payments)
        held = state.converted
        if target == held:
            return
        if held is not None and (target is None or target[0] != held[0]):
            self.emits.append(Emit(POSTBACK, ConversionsIn(held[0], user_id, at, "", 0, ())))
        if target is not None:
            self.emits.append(Emit(POSTBACK, ConversionsIn(target[0], user_id, at, target[1], target[2], target[3])))
        state.converted = target

    def _source_click(self, state: UserState) -> Touch | None:
        """The click that acquired the user (by click_id, else by device), if a click did."""
        redirect = state.redirect
        if redirect is None:
            return None
        if redirect.click_id is not None:
            held = state.answers.get((redirect.event_id, "k"))
            if held is not None and held[1] is not None:
                return held[1]
        if redirect.device_id is not None:
            held = state.answers.get((redirect.event_id, "d"))
            if held is not None and held[1] is not None:
                return held[1]
        return None

    def _order_rows(
        self, user_id: str, state: UserState, order_id: str, fact: UserFact, creator: str, share: Decimal | None,
        out: dict[str, MoneyFact],
    ) -> None:  # fmt: skip
        _, p, rate, refunds = state.orders[order_id]
        if p is None or rate is None:
            return
        value = EXACT.multiply(p.amount, rate)
        commission = EXACT.multiply(share, value) if share is not None else ZERO
        out[p.event_id] = MoneyFact(
            p.event_id, "payment", user_id, order_id, p.ts // TICKS_PER_US, p.date, fact.source_kind,
            fact.source_id, fact.cohort_date, p.currency, p.amount, rate, value, creator, commission,
        )  # fmt: skip
        for r in refunds:
            value = -EXACT.multiply(r.amount, rate)
            commission = EXACT.multiply(share, value) if share is not None else ZERO
            out[r.event_id] = MoneyFact(
                r.event_id, "refund", user_id, order_id, r.ts // TICKS_PER_US, r.date, fact.source_kind,
                fact.source_id, fact.cohort_date, r.currency, r.amount, rate, value, creator, commission,
            )  # fmt: skip

    def _unlock_rows(
        self, user_id: str, state: UserState, unlocks: Iterable[UnlockRec], fact: UserFact | None, at: int,
        out: dict[str, MoneyFact],
    ) -> None:  # fmt: skip
        """The money rows of ``unlocks`` (none for an unlock without a rate: its verdict says so) into ``out``."""
        rate_of, verdicts = self.config.fx.rate, state.verdicts
        for unlock in unlocks:
            rate = rate_of(unlock.currency, unlock.date)
            if rate is None:
                verdict = Verdict(NO_FX_RATE, f"no {unlock.currency} rate effective on or before {unlock.date}")
                self.set_verdict(verdicts, unlock.event_id, verdict, unlock.origin, "ad_unlock", at)
                continue
            if verdicts:  # (without one held, a rate found changes no verdict)
                self.set_verdict(verdicts, unlock.event_id, None, unlock.origin, "ad_unlock", at)
            if fact is None:
                continue
            out[unlock.event_id] = _new(MoneyFact, (
                unlock.event_id, "ad_unlock", user_id, "", unlock.ts // TICKS_PER_US, unlock.date, fact.source_kind,
                fact.source_id, fact.cohort_date, unlock.currency, unlock.revenue, rate,
                EXACT.multiply(unlock.revenue, rate), "", ZERO, True,
            ))  # fmt: skip

    def _commission_rate(self, fact: UserFact | None) -> tuple[str, Decimal | None]:
        if fact is None or fact.source_kind != "plan":
            return "", None
        plan = self.config.plans.get(fact.source_id)
        return (plan.creator_id, plan.commission_rate) if plan else ("", None)

    def _reindex(self) -> None:
        self._by_plan, self._by_unlock_currency = {}, {}
        for user_id, state in self.keys.items():
            if state.emitted is not None and state.emitted.source_kind == "plan":
                self._by_plan.setdefault(state.emitted.source_id, set()).add(user_id)
            for unlock in state.unlocks:
                self._by_unlock_currency.setdefault(unlock.currency, set()).add(user_id)


def _ids(held: HeldOrder | None) -> tuple[str, ...]:
    """The money ids an order result credits (its counted payment and accepted refunds)."""
    if held is None or held[1] is None:
        return ()
    return (held[1].event_id, *(r.event_id for r in held[3]))


def _retracted(row: MoneyFact) -> MoneyFact:
    """The retraction of a money row: its key (user, event) and ``active=False``."""
    return row._replace(active=False)
