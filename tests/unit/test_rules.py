"""Every rule of SPEC section 3, at the engine level, with hand-computed expectations."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from attribution.policy import Policy
from attribution.testing import (
    ad_unlock,
    click,
    fx,
    impression,
    payment,
    plan,
    redirect,
    refund,
    run,
    spend,
)

D = Decimal


def source(folded, user="u1"):
    fact = folded.active("users")[user]
    return fact.source_kind, fact.source_id, fact.touch, fact.cohort_date


# ---- rule 1: acquisition is the earliest redirect


def test_earliest_redirect_is_acquisition_even_if_it_arrives_last():
    f = run(
        [
            redirect(event_id="r2", ts="2026-11-03T10:00:00+08:00"),
            click(ts="2026-11-01T09:00:00+08:00", click_id="k1", device_id="d9", campaign_id="cA"),
            redirect(event_id="r1", ts="2026-11-01T10:00:00+08:00", click_id="k1"),
        ]
    )
    assert source(f) == ("campaign", "cA", "click_id", date(2026, 11, 1))


def test_redirect_ties_broken_by_smaller_event_id():
    f = run(
        [
            click(ts="2026-11-01T09:00:00+08:00", click_id="kb", device_id="x", plan_id="pB"),
            click(ts="2026-11-01T09:00:00+08:00", click_id="ka", device_id="y", campaign_id="cA"),
            redirect(event_id="r-b", ts="2026-11-01T10:00:00+08:00", click_id="kb"),
            redirect(event_id="r-a", ts="2026-11-01T10:00:00+08:00", click_id="ka"),
        ]
    )
    assert source(f)[:2] == ("campaign", "cA")


# ---- rule 2: click_id, device click, view-through, organic


def test_click_id_match_beats_a_later_device_click():
    f = run(
        [
            click(ts="2026-11-01T09:00:00+08:00", click_id="k1", device_id="d1", campaign_id="cA"),
            click(ts="2026-11-01T09:30:00+08:00", click_id="k2", device_id="d1", plan_id="pB"),
            redirect(ts="2026-11-01T10:00:00+08:00", click_id="k1", device_id="d1"),
        ]
    )
    assert source(f)[:3] == ("campaign", "cA", "click_id")


def test_click_id_outside_window_falls_back_to_device():
    f = run(
        [
            click(ts="2026-10-20T09:00:00+08:00", click_id="k1", device_id="d0", campaign_id="cOld"),
            click(ts="2026-11-01T09:30:00+08:00", click_id="k2", device_id="d1", plan_id="pB"),
            redirect(ts="2026-11-01T10:00:00+08:00", click_id="k1", device_id="d1"),
        ]
    )
    assert source(f)[:3] == ("plan", "pB", "device")


def test_click_window_is_inclusive_at_both_ends():
    t = "2026-11-08T10:00:00+08:00"
    at_start = run(
        [click(ts="2026-11-01T10:00:00+08:00", click_id="k", campaign_id="cA"), redirect(ts=t, click_id="k")]
    )
    assert source(at_start)[:2] == ("campaign", "cA")
    too_old = run([click(ts="2026-11-01T09:59:59+08:00", click_id="k", campaign_id="cA"), redirect(ts=t, click_id="k")])
    assert source(too_old)[:2] == ("organic", "organic")
    same_instant = run([click(ts=t, click_id="k", campaign_id="cA"), redirect(ts=t, click_id="k")])
    assert source(same_instant)[:2] == ("campaign", "cA")
    after = run([click(ts="2026-11-08T10:00:01+08:00", click_id="k", campaign_id="cA"), redirect(ts=t, click_id="k")])
    assert source(after)[:2] == ("organic", "organic")


def test_windows_compare_instants_across_offsets():
    f = run(
        [
            click(ts="2026-11-01T02:00:00Z", click_id="k", campaign_id="cA"),  # = 10:00 +08:00
            redirect(ts="2026-11-08T10:00:00+08:00", click_id="k"),
        ]
    )
    assert source(f)[:2] == ("campaign", "cA")


def test_view_through_within_24h_and_click_beats_impression():
    t = "2026-11-02T10:00:00+08:00"
    view = run([impression(ts="2026-11-01T10:00:00+08:00", device_id="d1"), redirect(ts=t, device_id="d1")])
    assert source(view)[:3] == ("campaign", "cA", "view")
    stale = run([impression(ts="2026-11-01T09:59:59+08:00", device_id="d1"), redirect(ts=t, device_id="d1")])
    assert source(stale)[:2] == ("organic", "organic")
    both = run(
        [
            impression(ts="2026-11-02T09:59:00+08:00", device_id="d1", campaign_id="cView"),
            click(ts="2026-11-01T11:00:00+08:00", device_id="d1", plan_id="pB"),
            redirect(ts=t, device_id="d1"),
        ]
    )
    assert source(both)[:3] == ("plan", "pB", "device")


def test_redirect_without_click_id_or_device_is_organic():
    f = run([click(ts="2026-11-01T10:00:00+08:00", device_id="d1"), redirect(ts="2026-11-01T10:05:00+08:00")])
    assert source(f)[:3] == ("organic", "organic", "organic")


def test_latest_touch_wins_with_event_id_tie_break():
    t = "2026-11-01T09:00:00+08:00"
    f = run(
        [
            click(event_id="c-b", ts=t, device_id="d1", campaign_id="cB"),
            click(event_id="c-a", ts=t, device_id="d1", campaign_id="cA"),
            redirect(ts="2026-11-01T10:00:00+08:00", device_id="d1"),
        ]
    )
    assert source(f)[:2] == ("campaign", "cB")


def test_custom_windows():
    policy = Policy(click_window_s=3600, view_window_s=60)
    f = run(
        [
            click(ts="2026-11-01T08:59:00+08:00", click_id="k", campaign_id="cA"),
            redirect(ts="2026-11-01T10:00:00+08:00", click_id="k"),
        ],
        policy,
    )
    assert source(f)[:2] == ("organic", "organic")


# ---- rule 3: credit, money before T, users without redirect


def test_money_before_acquisition_is_credited_to_the_source():
    f = run(
        [
            payment(ts="2026-11-01T08:00:00+08:00", order_id="o1"),
            click(ts="2026-11-01T09:00:00+08:00", click_id="k1", campaign_id="cA"),
            redirect(ts="2026-11-01T10:00:00+08:00", click_id="k1"),
        ]
    )
    money = f.active("money")
    (m,) = money.values()
    assert (m.source_kind, m.source_id, m.cohort_date, m.date) == (
        "campaign",
        "cA",
        date(2026, 11, 1),
        date(2026, 11, 1),
    )


def test_user_without_redirect_is_organic_dated_by_earliest_money_then_moves_when_redirect_arrives():
    lines = [
        ad_unlock(ts="2026-11-03T09:00:00+08:00", user_id="u7"),
        payment(ts="2026-11-04T09:00:00+08:00", user_id="u7", order_id="o7"),
    ]
    f = run(lines)
    assert source(f, "u7") == ("organic", "organic", "no_redirect", date(2026, 11, 3))
    later = [
        *lines,
        click(ts="2026-11-05T09:00:00+08:00", click_id="k7", plan_id="pB"),
        redirect(ts="2026-11-05T09:01:00+08:00", user_id="u7", click_id="k7"),
    ]
    f = run(later)
    assert source(f, "u7") == ("plan", "pB", "click_id", date(2026, 11, 5))
    assert {m.source_id for m in f.active("money").values()} == {"pB"}


def test_cohort_date_is_in_the_reporting_time_zone():
    f = run([redirect(ts="2026-11-01T17:00:00Z")])  # 01:00 on 11-02 in Shanghai
    assert source(f)[3] == date(2026, 11, 2)
    f = run([redirect(ts="2026-11-01T17:00:00Z")], Policy(tz="UTC"))
    assert source(f)[3] == date(2026, 11, 1)


# ---- rule 4: refunds


def test_refund_before_its_payment_is_matched_at_the_payments_rate():
    f = run(
        [
            refund(ts="2026-11-01T08:00:00+08:00", order_id="o1", amount="5", currency="USD"),
            fx(currency="USD", rate="7", effective_date="2026-11-01"),
            fx(currency="USD", rate="8", effective_date="2026-11-03"),
            payment(ts="2026-11-02T08:00:00+08:00", order_id="o1", amount="10", currency="USD"),
            refund(ts="2026-11-05T08:00:00+08:00", order_id="o1", amount="5", currency="USD"),
        ]
    )
    values = sorted(m.value for m in f.active("money").values())
    assert values == [D(-35), D(-35), D(70)]
    assert f.facts()["state_rejections"] == {}


def test_refund_rejections_unknown_order_currency_and_excess():
    f = run(
        [
            refund(event_id="rf-unknown", order_id="nope"),
            payment(order_id="o1", amount="30"),
            refund(event_id="rf-usd", ts="2026-11-02T11:00:00+08:00", order_id="o1", amount="1", currency="USD"),
            refund(event_id="rf-1", ts="2026-11-02T12:00:00+08:00", order_id="o1", amount="20"),
            refund(event_id="rf-2", ts="2026-11-02T13:00:00+08:00", order_id="o1", amount="20"),
            refund(event_id="rf-3", ts="2026-11-02T14:00:00+08:00", order_id="o1", amount="10"),
        ]
    )
    assert f.facts()["state_rejections"] == {
        "event:rf-unknown": "unknown_order",
        "event:rf-usd": "invalid_field",
        "event:rf-2": "refund_exceeds_payment",
    }
    refunds = sorted(m.value for m in f.active("money").values() if m.kind == "refund")
    assert refunds == [D(-20), D(-10)]


def test_refund_of_a_rejected_payment_is_unknown_order():
    f = run([payment(order_id="o1", currency="EUR"), refund(event_id="rf", order_id="o1", currency="EUR")])
    reasons = sorted(f.facts()["state_rejections"].values())
    assert reasons == ["no_fx_rate", "unknown_order"]


# ---- rule 5: duplicates


def test_event_id_duplicates_are_counted_and_ignored():
    line = payment(order_id="o1")
    f = run([line, line, line])
    assert f.facts()["event_duplicates"] == 2
    assert len(f.active("money")) == 1


def test_earliest_accepted_payment_of_an_order_counts():
    f = run(
        [
            payment(event_id="p-late", ts="2026-11-02T12:00:00+08:00", order_id="o1", amount="50"),
            payment(event_id="p-nofx", ts="2026-11-02T08:00:00+08:00", order_id="o1", currency="EUR"),
            payment(event_id="p-early", ts="2026-11-02T10:00:00+08:00", order_id="o1", amount="30"),
        ]
    )
    facts = f.facts()
    assert [m.event_id for m in facts["money"].values()] == ["p-early"]
    assert facts["order_duplicates"] == ["order:p-late"]
    assert facts["state_rejections"] == {"event:p-nofx": "no_fx_rate"}


def test_a_late_earlier_payment_displaces_the_counted_one_and_retracts_it():
    engine_lines_1 = [payment(event_id="p2", ts="2026-11-02T12:00:00+08:00", order_id="o1", user_id="uA")]
    engine_lines_2 = [payment(event_id="p1", ts="2026-11-02T10:00:00+08:00", order_id="o1", user_id="uB")]
    f = run(engine_lines_1 + engine_lines_2, batch_sizes=[1, 1])
    assert [m.event_id for m in f.active("money").values()] == ["p1"]
    assert set(f.active("users")) == {"uB"}  # uA had nothing else that counts


# ---- rule 6: currency


def test_fx_by_greatest_effective_date_on_or_before_local_date_final_config():
    f = run(
        [
            payment(ts="2026-11-01T23:30:00Z", order_id="o1", amount="10", currency="USD"),  # 11-02 local
            fx(ts="2026-11-01T00:00:00Z", event_id="fx-a", currency="USD", rate="7.0", effective_date="2026-11-01"),
            fx(ts="2026-11-01T00:00:00Z", event_id="fx-b", currency="USD", rate="7.2", effective_date="2026-11-02"),
            fx(ts="2026-11-05T00:00:00Z", event_id="fx-c", currency="USD", rate="7.3", effective_date="2026-11-02"),
            fx(ts="2026-11-01T00:00:00Z", event_id="fx-d", currency="USD", rate="7.4", effective_date="2026-11-03"),
        ]
    )
    (m,) = f.active("money").values()
    assert (m.rate, m.value) == (D("7.3"), D("73.0"))


def test_reporting_currency_needs_no_rate_and_ignores_one():
    f = run([fx(currency="CNY", rate="2"), payment(order_id="o1", amount="10")])
    (m,) = f.active("money").values()
    assert m.value == D(10)


def test_missing_rate_rejects_money_and_spend():
    f = run([ad_unlock(event_id="au", currency="JPY"), spend(event_id="sp", currency="JPY")])
    assert f.facts()["state_rejections"] == {"event:au": "no_fx_rate", "event:sp": "no_fx_rate"}
    assert not f.active("money") and not f.active("spend")


def test_exact_decimal_conversion():
    f = run(
        [
            fx(currency="USD", rate="7.123456789012345678901234567", effective_date="2026-01-01"),
            payment(order_id="o1", amount="999999999999.9999", currency="USD"),
        ]
    )
    (m,) = f.active("money").values()
    # 16 + 27 significant digits: the default 28-digit context would round this
    assert m.value == D("7123456789012.3449665555556657654321098765433")


# ---- spend restatement


def test_latest_restatement_counts_and_a_no_fx_version_never_does():
    f = run(
        [
            spend(event_id="s1", ts="2026-11-02T01:00:00+08:00", amount="100"),
            spend(event_id="s3", ts="2026-11-03T01:00:00+08:00", amount="5", currency="EUR"),
            spend(event_id="s2", ts="2026-11-02T05:00:00+08:00", period_start="2026-11-01T16:00:00Z", amount="80"),
        ]
    )
    (s,) = f.active("spend").values()
    assert (s.event_id, s.value, s.date) == ("s2", D(80), date(2026, 11, 2))
    assert f.facts()["state_rejections"] == {"event:s3": "no_fx_rate"}


# ---- rule 7: commission


def test_commission_on_plan_payments_and_clawback_with_latest_plan_config():
    f = run(
        [
            plan(ts="2026-10-01T00:00:00Z", commission_rate="0.3"),
            plan(ts="2026-10-02T00:00:00Z", commission_rate="0.25", creator_id="cr2"),
            click(ts="2026-11-02T09:00:00+08:00", click_id="k", plan_id="pB"),
            redirect(ts="2026-11-02T09:05:00+08:00", click_id="k"),
            payment(order_id="o1", amount="100"),
            refund(order_id="o1", amount="40"),
            ad_unlock(revenue="1.00"),
        ]
    )
    by_kind = {m.kind: (m.creator_id, m.commission) for m in f.active("money").values()}
    assert by_kind == {"payment": ("cr2", D("25.00")), "refund": ("cr2", D("-10.00")), "ad_unlock": ("", D(0))}


def test_unconfigured_plan_sources_users_but_earns_nothing():
    f = run(
        [
            click(ts="2026-11-02T09:00:00+08:00", click_id="k", plan_id="pX"),
            redirect(ts="2026-11-02T09:05:00+08:00", click_id="k"),
            payment(order_id="o1", amount="100"),
        ]
    )
    (m,) = f.active("money").values()
    assert (m.source_id, m.creator_id, m.commission) == ("pX", "", D(0))


# ---- SPEC 3.8: late events correct earlier facts (one event per batch)


def _one_by_one(lines):
    return run(lines, batch_sizes=[1] * len(lines))


def test_late_click_by_click_id_reattributes_the_user():
    f = _one_by_one(
        [
            redirect(ts="2026-11-02T10:00:00+08:00", click_id="k1", device_id="d1"),
            payment(order_id="o1"),
            click(ts="2026-11-02T09:00:00+08:00", click_id="k1", device_id="d-other", campaign_id="cA"),
        ]
    )
    assert source(f)[:3] == ("campaign", "cA", "click_id")
    assert {m.source_id for m in f.active("money").values()} == {"cA"}


def test_late_device_click_and_late_impression_reattribute_the_user():
    f = _one_by_one(
        [
            redirect(ts="2026-11-02T10:00:00+08:00", device_id="d1"),
            impression(ts="2026-11-02T09:00:00+08:00", device_id="d1", campaign_id="cV"),
        ]
    )
    assert source(f)[:3] == ("campaign", "cV", "view")
    f = _one_by_one(
        [
            redirect(ts="2026-11-02T10:00:00+08:00", device_id="d1"),
            impression(ts="2026-11-02T09:00:00+08:00", device_id="d1", campaign_id="cV"),
            click(ts="2026-11-01T09:00:00+08:00", click_id="k9", device_id="d1", plan_id="pB"),
        ]
    )
    assert source(f)[:3] == ("plan", "pB", "device")


def test_late_plan_config_updates_commission_of_existing_money():
    f = _one_by_one(
        [
            click(ts="2026-11-02T09:00:00+08:00", click_id="k", plan_id="pB"),
            redirect(ts="2026-11-02T09:05:00+08:00", click_id="k"),
            payment(order_id="o1", amount="100"),
            plan(commission_rate="0.2", creator_id="cr9"),
        ]
    )
    (m,) = f.active("money").values()
    assert (m.creator_id, m.commission) == ("cr9", D("20.0"))


def test_late_fx_rate_lifts_a_no_fx_rate_rejection():
    f = _one_by_one(
        [
            payment(event_id="p", order_id="o1", amount="10", currency="USD"),
            refund(event_id="rf", order_id="o1", amount="10", currency="USD"),
            spend(event_id="s", currency="USD", amount="2"),
            fx(currency="USD", rate="7", effective_date="2026-11-01"),
        ]
    )
    assert f.facts()["state_rejections"] == {}
    assert sorted(m.value for m in f.active("money").values()) == [D(-70), D(70)]
    assert [s.value for s in f.active("spend").values()] == [D(14)]
    retracted = {k for k, r in f.tables["rejections"].items() if not r.active}
    assert retracted == {"event:p", "event:rf", "event:s"}


def test_engine_state_size_counts_what_the_gauges_show() -> None:
    from attribution import testing as t
    from attribution.engine import Engine
    from attribution.policy import Policy

    engine = Engine(Policy())
    engine.process(
        t.records(
            [
                t.click(event_id="c-old", click_id="k0", ts="2026-10-01T00:00:00Z"),  # 31 days before the newest
                t.click(event_id="c-new", click_id="k1", ts="2026-11-01T00:00:00Z"),
                t.impression(event_id="i1"),
                t.redirect(event_id="r1", user_id="u1"),
                t.refund(event_id="f1", order_id="o-none"),  # unknown_order: may change when its payment comes
            ]
        )
    )
    size = engine.state.size(Policy().click_window_s)
    assert size == {"users": 1, "orders": 1, "clicks": 2, "clicks_in_window": 1, "impressions": 1, "pending": 1}
