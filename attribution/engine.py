"""The incremental attribution engine: batches of raw records in, changed facts out.

``Engine.process`` decodes a batch, takes each event's first copy into state,
marks the users, orders and campaign-hours the batch touched, and recomputes
exactly those from everything known so far. Because each recomputation reads
the whole state (all clicks, all payments of the order, the final fx table),
the facts after any set of events do not depend on the order or batching they
came in: a late click re-attributes its user, an earlier payment of an order
displaces a later one, and the engine emits the corrections.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from attribution.clock import TICKS_PER_SECOND, TICKS_PER_US, LocalDates, to_micros, to_ticks
from attribution.fx import EXACT, FxTable
from attribution.orders import DUPLICATE, NO_FX_RATE, PaymentRec, RefundRec, Verdict, resolve_order
from attribution.outputs import (
    EVENT_ID_DUPLICATE,
    ORDER_DUPLICATE,
    ORDER_KEY_PREFIX,
    STATE_KEY_PREFIX,
    CampaignRow,
    Duplicate,
    FxRow,
    LoggedEvent,
    MoneyFact,
    Outputs,
    PlanRow,
    Rejection,
    SpendFact,
    UserFact,
)
from attribution.policy import Policy
from attribution.sources import Redirect, Touch, find_source
from attribution.state import (
    CampaignConfig,
    EngineState,
    OrderState,
    PlanConfig,
    SpendRec,
    SpendState,
    UnlockRec,
    UserState,
)
from schemas import events as ev
from schemas.decode import Invalid, decode
from schemas.framing import Record as Record  # re-exported: the engine's input type

ZERO = Decimal(0)


class _Dirty:
    __slots__ = ("currencies", "orders", "spend", "users")

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.orders: set[str] = set()
        self.spend: set[tuple[str, int]] = set()
        self.currencies: dict[str, date] = {}  # currency -> earliest effective date that changed


class Engine:
    """SPEC sections 3-5, incrementally. Not thread-safe; one engine per state shard."""

    def __init__(self, policy: Policy, state: EngineState | None = None) -> None:
        self.policy = policy
        self.state = state or EngineState()
        self.fx = FxTable(policy.currency)
        self._dates = LocalDates(policy.zone)
        self._click_window = policy.click_window_s * TICKS_PER_SECOND
        self._view_window = policy.view_window_s * TICKS_PER_SECOND

    # ------------------------------------------------------------------ intake

    def process(self, records: Iterable[Record]) -> Outputs:
        """Take a batch of records; return every fact that changed because of it."""
        out = Outputs()
        dirty = _Dirty()
        seen = self.state.seen
        for origin, raw, verdict in records:
            event = verdict or decode(raw)
            if isinstance(event, Invalid):
                out.rejections.append(
                    Rejection(origin, event.reason, event.detail, event.event_id, event.type, origin, raw)
                )
                continue
            if event.event_id in seen:
                out.duplicates.append(Duplicate(origin, EVENT_ID_DUPLICATE, event.event_id, origin))
                continue
            seen.add(event.event_id)
            ts = to_ticks(event.ts)
            out.events.append(LoggedEvent(event.event_id, event.type, ts // TICKS_PER_US, origin, raw))
            self._ingest(event, ts, origin, raw, dirty, out)
        self._flush(dirty, out)
        return out

    def _ingest(self, event: ev.Event, ts: int, origin: str, raw: bytes, dirty: _Dirty, out: Outputs) -> None:
        st = self.state
        if isinstance(event, ev.Impression):  # by frequency: impressions, unlocks, redirects, clicks
            touch = Touch(ts, event.event_id, "campaign", event.campaign_id)
            impressions = st.impressions_by_device.get(event.device_id)
            if impressions is None:
                st.impressions_by_device[event.device_id] = [touch]
            else:
                impressions.append(touch)
            if event.device_id in st.users_by_device:
                dirty.users.update(st.users_by_device[event.device_id])
        elif isinstance(event, ev.AdUnlock):
            user = self._user(event.user_id)
            user.unlocks.append(
                UnlockRec(ts, event.event_id, event.revenue, event.currency, self._dates.of_ticks(ts), origin, raw)
            )
            st.unlock_users_by_currency.setdefault(event.currency, set()).add(event.user_id)
            dirty.users.add(event.user_id)
        elif isinstance(event, ev.Redirect):
            user = self._user(event.user_id)
            redirect = Redirect(ts, event.event_id, event.click_id, event.device_id)
            if user.redirect is None or redirect < user.redirect:
                user.redirect = redirect
                if event.click_id is not None:
                    st.users_by_click_id.setdefault(event.click_id, set()).add(event.user_id)
                if event.device_id is not None:
                    st.users_by_device.setdefault(event.device_id, set()).add(event.user_id)
                dirty.users.add(event.user_id)
        elif isinstance(event, ev.Click):
            if event.campaign_id is not None:
                touch = Touch(ts, event.event_id, "campaign", event.campaign_id)
            else:
                touch = Touch(ts, event.event_id, "plan", event.plan_id or "")
            st.clicks_by_id.setdefault(event.click_id, []).append(touch)
            st.clicks_by_device.setdefault(event.device_id, []).append(touch)
            dirty.users.update(st.users_by_click_id.get(event.click_id, ()))
            dirty.users.update(st.users_by_device.get(event.device_id, ()))
        elif isinstance(event, ev.Payment):
            order = self._order(event.order_id)
            order.payments.append(
                PaymentRec(
                    ts, event.event_id, event.user_id, event.amount, event.currency,
                    self._dates.of_ticks(ts), origin, raw,
                )
            )  # fmt: skip
            st.orders_by_currency.setdefault(event.currency, set()).add(event.order_id)
            dirty.orders.add(event.order_id)
        elif isinstance(event, ev.Refund):
            order = self._order(event.order_id)
            order.refunds.append(
                RefundRec(ts, event.event_id, event.amount, event.currency, self._dates.of_ticks(ts), origin, raw)
            )
            dirty.orders.add(event.order_id)
        elif isinstance(event, ev.AdSpend):
            period_us = to_micros(event.period_start)
            key = (event.campaign_id, period_us)
            spend = st.spend.get(key)
            if spend is None:
                spend = st.spend[key] = SpendState()
            spend.versions.append(
                SpendRec(
                    ts, event.event_id, period_us, self._dates.of_micros(period_us),
                    event.amount, event.currency, origin, raw,
                )
            )  # fmt: skip
            st.spend_by_currency.setdefault(event.currency, set()).add(key)
            dirty.spend.add(key)
        else:
            self._configure(event, ts, dirty, out)

    def _configure(self, event: ev.Event, ts: int, dirty: _Dirty, out: Outputs) -> None:
        st = self.state
        version = (ts, event.event_id)
        if isinstance(event, ev.FxRate):
            if event.currency == self.policy.currency:
                return  # SPEC 3.6: a rate for the reporting currency is ignored
            if self.fx.upsert(event.currency, event.effective_date, version, event.rate):
                since = dirty.currencies.get(event.currency)
                if since is None or event.effective_date < since:
                    dirty.currencies[event.currency] = event.effective_date
                out.fx.append(FxRow(event.currency, event.effective_date, event.rate))
        elif isinstance(event, ev.PromotionPlan):
            current = st.plans.get(event.plan_id)
            if current is None or version > current.version:
                st.plans[event.plan_id] = PlanConfig(version, event.creator_id, event.drama_id, event.commission_rate)
                out.plans.append(PlanRow(event.plan_id, event.creator_id, event.drama_id, event.commission_rate))
                dirty.users.update(st.users_by_plan.get(event.plan_id, ()))
        elif isinstance(event, ev.Campaign):
            current_c = st.campaigns.get(event.campaign_id)
            if current_c is None or version > current_c.version:
                name = event.name or ""
                st.campaigns[event.campaign_id] = CampaignConfig(
                    version, event.platform, event.drama_id, event.buyer_id, name
                )
                out.campaigns.append(
                    CampaignRow(event.campaign_id, event.platform, event.drama_id, event.buyer_id, name)
                )

    def _order(self, order_id: str) -> OrderState:
        order = self.state.orders.get(order_id)
        if order is None:
            order = self.state.orders[order_id] = OrderState()
        return order

    def _user(self, user_id: str) -> UserState:
        user = self.state.users.get(user_id)
        if user is None:
            user = self.state.users[user_id] = UserState()
        return user

    # ------------------------------------------------------------ recompute

    def _flush(self, dirty: _Dirty, out: Outputs) -> None:
        st = self.state
        for currency, since in dirty.currencies.items():
            # a rate effective from `since` can only change amounts dated on or after it
            for order_id in st.orders_by_currency.get(currency, ()):
                if any(p.date >= since for p in st.orders[order_id].payments if p.currency == currency):
                    dirty.orders.add(order_id)
            for user_id in st.unlock_users_by_currency.get(currency, ()):
                if any(u.date >= since for u in st.users[user_id].unlocks if u.currency == currency):
                    dirty.users.add(user_id)
            for key in st.spend_by_currency.get(currency, ()):
                if any(v.period_date >= since for v in st.spend[key].versions if v.currency == currency):
                    dirty.spend.add(key)
        for order_id in dirty.orders:
            self._resolve_order(order_id, dirty, out)
        for user_id in dirty.users:
            self._attribute_user(user_id, out)
        for key in dirty.spend:
            self._count_spend(key, out)

    def _set_verdict(
        self, event_id: str, new: Verdict | None, origin: str, raw: bytes, type_: str, out: Outputs
    ) -> None:
        """Record whether an event counts, emitting rejection/duplicate rows and their retractions."""
        verdicts = self.state.verdicts
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
            out.duplicates.append(Duplicate(ORDER_KEY_PREFIX + event_id, ORDER_DUPLICATE, event_id, origin, False))
        if old is not None and not old_dup and (new is None or new_dup):
            out.rejections.append(
                Rejection(STATE_KEY_PREFIX + event_id, old.reason, "", event_id, type_, origin, raw, False)
            )
        if new is not None:
            if new_dup:
                out.duplicates.append(Duplicate(ORDER_KEY_PREFIX + event_id, ORDER_DUPLICATE, event_id, origin))
            else:
                out.rejections.append(
                    Rejection(STATE_KEY_PREFIX + event_id, new.reason, new.detail, event_id, type_, origin, raw)
                )

    def _resolve_order(self, order_id: str, dirty: _Dirty, out: Outputs) -> None:
        order = self.state.orders[order_id]
        resolution = resolve_order(order_id, order.payments, order.refunds, self.fx.rate)
        order.resolution = resolution
        for p in order.payments:
            self._set_verdict(p.event_id, resolution.verdicts.get(p.event_id), p.origin, p.raw, "payment", out)
        for r in order.refunds:
            self._set_verdict(r.event_id, resolution.verdicts.get(r.event_id), r.origin, r.raw, "refund", out)
        owner = resolution.counted.user_id if resolution.counted else None
        if order.owner != owner:
            if order.owner is not None:
                self.state.users[order.owner].orders.discard(order_id)
                dirty.users.add(order.owner)
            if owner is not None:
                self._user(owner).orders.add(order_id)
            order.owner = owner
        if owner is not None:
            dirty.users.add(owner)
        money_ids = frozenset(
            ([resolution.counted.event_id] if resolution.counted else []) + [r.event_id for r in resolution.refunds]
        )
        for gone in order.money_ids - money_ids:
            out.money.append(_retracted_money(gone))
        order.money_ids = money_ids

    def _acquisition(self, user: UserState) -> UserFact | None:
        """Rules 1-3: the user's source and cohort, or None if the user has nothing that counts."""
        redirect = user.redirect
        if redirect is not None:
            st = self.state
            source = find_source(
                redirect,
                st.clicks_by_id,
                st.clicks_by_device,
                st.impressions_by_device,
                self._click_window,
                self._view_window,
            )
            cohort = self._dates.of_ticks(redirect.ts)
            return UserFact("", source.kind, source.id, source.touch, cohort, redirect.ts // TICKS_PER_US)
        earliest: int | None = None
        for order_id in user.orders:
            counted = self.state.orders[order_id].resolution.counted  # type: ignore[union-attr]
            if counted is not None and (earliest is None or counted.ts < earliest):
                earliest = counted.ts
        for unlock in user.unlocks:
            if self.fx.rate(unlock.currency, unlock.date) is not None and (earliest is None or unlock.ts < earliest):
                earliest = unlock.ts
        if earliest is None:
            return None
        return UserFact(
            "", "organic", "organic", "no_redirect", self._dates.of_ticks(earliest), earliest // TICKS_PER_US
        )

    def _attribute_user(self, user_id: str, out: Outputs) -> None:
        user = self.state.users[user_id]
        fact = self._acquisition(user)
        previous = user.emitted
        if fact is None:
            if previous is not None:
                out.users.append(previous._replace(active=False))
                self._unindex_plan_user(previous, user_id)
                user.emitted = None
            for unlock in user.unlocks:  # nothing to credit, but rejections still hold
                self._unlock_money(unlock, None, user_id, out)
            return
        fact = fact._replace(user_id=user_id)
        if fact != previous:
            out.users.append(fact)
            if previous is not None:
                self._unindex_plan_user(previous, user_id)
            if fact.source_kind == "plan":
                self.state.users_by_plan.setdefault(fact.source_id, set()).add(user_id)
            user.emitted = fact
        self._emit_money(user_id, user, fact, out)

    def _unindex_plan_user(self, fact: UserFact, user_id: str) -> None:
        if fact.source_kind == "plan":
            self.state.users_by_plan.get(fact.source_id, set()).discard(user_id)

    def _commission_rate(self, fact: UserFact) -> tuple[str, Decimal | None]:
        if fact.source_kind != "plan":
            return "", None
        plan = self.state.plans.get(fact.source_id)
        return (plan.creator_id, plan.commission_rate) if plan else ("", None)

    def _emit_money(self, user_id: str, user: UserState, fact: UserFact, out: Outputs) -> None:
        creator, share = self._commission_rate(fact)
        for order_id in user.orders:
            resolution = self.state.orders[order_id].resolution
            assert resolution is not None and resolution.counted is not None and resolution.rate is not None
            p, rate = resolution.counted, resolution.rate
            value = EXACT.multiply(p.amount, rate)
            commission = EXACT.multiply(share, value) if share is not None else ZERO
            out.money.append(
                MoneyFact(
                    p.event_id, "payment", user_id, order_id, p.ts // TICKS_PER_US, p.date, fact.source_kind, fact.source_id,
                    fact.cohort_date, p.currency, p.amount, rate, value, creator, commission,
                )
            )  # fmt: skip
            for r in resolution.refunds:
                value = -EXACT.multiply(r.amount, rate)
                commission = EXACT.multiply(share, value) if share is not None else ZERO
                out.money.append(
                    MoneyFact(
                        r.event_id, "refund", user_id, order_id, r.ts // TICKS_PER_US, r.date, fact.source_kind, fact.source_id,
                        fact.cohort_date, r.currency, r.amount, rate, value, creator, commission,
                    )
                )  # fmt: skip
        for unlock in user.unlocks:
            self._unlock_money(unlock, fact, user_id, out)

    def _unlock_money(self, unlock: UnlockRec, fact: UserFact | None, user_id: str, out: Outputs) -> None:
        rate = self.fx.rate(unlock.currency, unlock.date)
        if rate is None:
            verdict = Verdict(NO_FX_RATE, f"no {unlock.currency} rate effective on or before {unlock.date}")
            self._set_verdict(unlock.event_id, verdict, unlock.origin, unlock.raw, "ad_unlock", out)
            return
        self._set_verdict(unlock.event_id, None, unlock.origin, unlock.raw, "ad_unlock", out)
        if fact is None:
            return
        out.money.append(
            MoneyFact(
                unlock.event_id, "ad_unlock", user_id, "", unlock.ts // TICKS_PER_US, unlock.date, fact.source_kind,
                fact.source_id, fact.cohort_date, unlock.currency, unlock.revenue, rate,
                EXACT.multiply(unlock.revenue, rate), "", ZERO,
            )
        )  # fmt: skip

    def _count_spend(self, key: tuple[str, int], out: Outputs) -> None:
        """Restated spend: the latest version that has a rate counts (SPEC 2, ad_spend)."""
        spend = self.state.spend[key]
        best: SpendRec | None = None
        best_rate: Decimal | None = None
        for version in spend.versions:
            rate = self.fx.rate(version.currency, version.period_date)
            verdict = None
            if rate is None:
                verdict = Verdict(
                    NO_FX_RATE, f"no {version.currency} rate effective on or before {version.period_date}"
                )
            elif best is None or version > best:
                best, best_rate = version, rate
            self._set_verdict(version.event_id, verdict, version.origin, version.raw, "ad_spend", out)
        if best is None or best_rate is None:
            if spend.counted is not None:
                out.spend.append(_retracted_spend(key))
                spend.counted = None
            return
        spend.counted = best.event_id
        out.spend.append(
            SpendFact(
                key[0], key[1], best.period_date, best.event_id, best.currency, best.amount, best_rate,
                EXACT.multiply(best.amount, best_rate),
            )
        )  # fmt: skip

    # ------------------------------------------------------------ inspection

    def config_rows(self) -> Outputs:
        """The current configuration as output rows (for a sink starting from scratch)."""
        out = Outputs()
        out.campaigns = [
            CampaignRow(cid, c.platform, c.drama_id, c.buyer_id, c.name) for cid, c in self.state.campaigns.items()
        ]
        out.plans = [PlanRow(pid, p.creator_id, p.drama_id, p.commission_rate) for pid, p in self.state.plans.items()]
        out.fx = [FxRow(c, d, r) for c, d, r in self.fx.rows()]
        return out


_EPOCH_DATE = date(1970, 1, 1)


def _retracted_money(event_id: str) -> MoneyFact:
    return MoneyFact(event_id, "", "", "", 0, _EPOCH_DATE, "", "", _EPOCH_DATE, "", ZERO, ZERO, ZERO, "", ZERO, False)


def _retracted_spend(key: tuple[str, int]) -> SpendFact:
    return SpendFact(key[0], key[1], _EPOCH_DATE, "", "", ZERO, ZERO, ZERO, False)
