"""Tests of the reference oracle itself, against SPEC.md (worked example of
section 3, and small cases for the subtler rules); its validation and its
speed are ``test_spec_oracle_lines.py``."""

from __future__ import annotations

import random

from .oracle_kit import (
    DATA,
    _row,
    click,
    fx,
    impression,
    payment,
    plan_cfg,
    redirect,
    refund,
    roi_rows,
    run,
    source_of_user,
    spend,
    unlock,
)
from .spec_oracle import read_event_lines, reference_reports

# ---------------------------------------------------------------------------
# SPEC 3: the worked example
# ---------------------------------------------------------------------------


def test_worked_example():
    lines = read_event_lines(DATA / "spec_example.jsonl")
    report = reference_reports(lines)  # CNY, Asia/Shanghai, default windows
    assert report["roi"] == [
        _row(
            "campaign",
            "cA",
            "2026-11-02",
            "80.00",
            1,
            1,
            "30.00",
            "0.00",
            "10.00",
            "30.00",
            "30.00",
            "20.00",
            "20.00",
            "20.00",
            "0.00",
            "0.3750",
            "0.2500",
            "0.2500",
        ),
        _row(
            "organic",
            "organic",
            "2026-11-02",
            "0.00",
            1,
            0,
            "0.00",
            "0.50",
            "0.00",
            "0.50",
            "0.50",
            "0.50",
            "0.50",
            "0.50",
            "0.00",
            None,
            None,
            None,
        ),
        _row(
            "plan",
            "pB",
            "2026-11-02",
            "0.00",
            1,
            1,
            "71.00",
            "0.00",
            "0.00",
            "71.00",
            "71.00",
            "71.00",
            "71.00",
            "71.00",
            "21.30",
            None,
            None,
            None,
        ),
    ]
    assert report["commission"] == [
        {
            "creator_id": "cr1",
            "plan_id": "pB",
            "date": "2026-11-02",
            "gross": "71.00",
            "refunds": "0.00",
            "net": "71.00",
            "commission": "21.30",
        },
    ]
    assert report["rejects"] == {"rejected": {"invalid_field": 1}, "duplicates": 1}


def test_worked_example_any_order_and_gzip(tmp_path):
    """SPEC 3.8: the reports are a function of the set of events."""
    lines = [line for line in read_event_lines(DATA / "spec_example.jsonl") if line.strip()]
    expected = reference_reports(lines)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = lines[:]
        rng.shuffle(shuffled)
        assert reference_reports([*shuffled, b"", b"  \r"]) == expected
    import gzip

    gz = tmp_path / "ex.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    assert reference_reports(read_event_lines(gz)) == expected


# ---------------------------------------------------------------------------
# Rule 4: refunds
# ---------------------------------------------------------------------------


def test_refund_before_payment_counts_dated_by_its_own_ts():
    # the refund carries an earlier ts (11-01) than its payment (11-05); user acquired 11-03
    r = run(
        redirect("r", "2026-11-03T12:00:00+08:00", "u1"),
        refund("f1", "2026-11-01T10:00:00+08:00", "o1", "4.00"),
        payment("p1", "2026-11-05T10:00:00+08:00", "o1", "u1", "10.00"),
    )
    row = roi_rows(r)[("organic", "organic", "2026-11-03")]
    assert row["revenue_iap"] == "10.00" and row["refunds"] == "4.00"
    # refund dated before the cohort counts in every dN; payment is D2
    assert row["revenue_d0"] == "-4.00"
    assert row["revenue_d1"] == "-4.00"
    assert row["revenue_d3"] == "6.00"
    assert row["revenue_total"] == "6.00"
    assert r["rejects"] == {"rejected": {}, "duplicates": 0}


def test_refund_cumulative_unknown_order_and_currency_mismatch():
    r = run(
        payment("p1", "2026-11-02T10:00:00+08:00", "o1", "u1", "10.00"),
        refund("f1", "2026-11-02T11:00:00+08:00", "o1", "6.00"),
        refund("f2", "2026-11-02T12:00:00+08:00", "o1", "5.00"),  # 11 > 10: exceeds
        refund("f3", "2026-11-02T13:00:00+08:00", "o1", "4.00"),  # 10 == 10: fine (f2 did not add)
        refund("f4", "2026-11-02T14:00:00+08:00", "o1", "0.01"),  # exceeds
        refund("f5", "2026-11-02T09:00:00+08:00", "o1", "1", "USD"),  # currency mismatch
        refund("f6", "2026-11-02T09:00:00+08:00", "o404", "1"),  # unknown order
        refund("f2", "2026-11-02T12:00:00+08:00", "o1", "5.00"),  # copy of a rejected event: duplicate
    )
    row = roi_rows(r)[("organic", "organic", "2026-11-02")]
    assert row["refunds"] == "10.00" and row["revenue_total"] == "0.00"
    assert r["rejects"] == {
        "rejected": {"refund_exceeds_payment": 2, "invalid_field": 1, "unknown_order": 1},
        "duplicates": 1,
    }


def test_refund_ordering_is_by_ts_not_file_order():
    # the 8.00 refund is later in the file but earlier in ts: it is accepted, the 5.00 is not
    r = run(
        payment("p1", "2026-11-02T10:00:00+08:00", "o1", "u1", "10.00"),
        refund("f-late", "2026-11-03T10:00:00+08:00", "o1", "5.00"),
        refund("f-early", "2026-11-02T11:00:00+08:00", "o1", "8.00"),
    )
    assert roi_rows(r)[("organic", "organic", "2026-11-02")]["refunds"] == "8.00"
    assert r["rejects"]["rejected"] == {"refund_exceeds_payment": 1}


def test_full_refund_of_foreign_payment_cancels_exactly_at_payment_rate():
    r = run(
        fx("fx1", "2026-01-01T00:00:00Z", "USD", "7.1234567", "2026-11-01"),
        fx("fx2", "2026-01-01T00:00:00Z", "USD", "9", "2026-11-03"),
        plan_cfg("pl", "2026-01-01T00:00:00Z", "pB", "cr1", "0.3"),
        click("c", "2026-11-02T09:00:00+08:00", "k", "d", plan="pB"),
        redirect("r", "2026-11-02T09:05:00+08:00", "u1", device="d"),
        payment("p1", "2026-11-02T10:00:00+08:00", "o1", "u1", "3.33", "USD"),
        refund("f1", "2026-11-04T10:00:00+08:00", "o1", "3.33", "USD"),  # fx of 11-03 must NOT be used
    )
    row = roi_rows(r)[("plan", "pB", "2026-11-02")]
    assert row["revenue_iap"] == "23.72"  # 3.33 * 7.1234567 = 23.721010811
    assert row["refunds"] == "23.72"
    assert row["revenue_total"] == "0.00"  # exact cancellation, never -0.00
    assert row["revenue_d1"] == "23.72"
    assert row["commission"] == "0.00"
    assert r["commission"] == [
        {
            "creator_id": "cr1",
            "plan_id": "pB",
            "date": "2026-11-02",
            "gross": "23.72",
            "refunds": "0.00",
            "net": "23.72",
            "commission": "7.12",
        },
        {
            "creator_id": "cr1",
            "plan_id": "pB",
            "date": "2026-11-04",
            "gross": "0.00",
            "refunds": "23.72",
            "net": "-23.72",
            "commission": "-7.12",
        },
    ]


# ---------------------------------------------------------------------------
# Rule 5: duplicates
# ---------------------------------------------------------------------------


def test_order_duplicate_payments():
    r = run(
        # later in the file but earliest in ts -> the counted one
        payment("p-b", "2026-11-02T11:00:00+08:00", "o1", "u1", "5.00"),
        payment("p-a", "2026-11-02T10:00:00+08:00", "o1", "u2", "7.00"),
        # same ts as p-a but greater event_id -> duplicate
        payment("p-c", "2026-11-02T10:00:00+08:00", "o1", "u3", "9.00"),
        # earliest of all but no fx rate: rejected, neither counted nor a duplicate
        payment("p-0", "2026-11-02T09:00:00+08:00", "o1", "u4", "1.00", "EUR"),
        # an exact event_id copy of p-b: counted once more as duplicate
        payment("p-b", "2026-11-02T11:00:00+08:00", "o1", "u1", "5.00"),
    )
    row = roi_rows(r)[("organic", "organic", "2026-11-02")]
    # only u2 has money (payments ignored as order duplicates are not money)
    assert row["new_users"] == 1 and row["payers"] == 1 and row["revenue_iap"] == "7.00"
    assert r["rejects"] == {"rejected": {"no_fx_rate": 1}, "duplicates": 3}


def test_invalid_lines_are_rejected_every_time_valid_copies_are_duplicates():
    bad = b'{"type":"click","event_id":"x","ts":"2026-11-02T10:00:00"}'  # no offset
    r = run(
        bad,
        bad,
        unlock("a", "2026-11-02T10:00:00Z", "u1", "1", "EUR"),
        unlock("a", "2026-11-02T10:00:00Z", "u1", "1", "EUR"),
    )
    assert r["rejects"] == {"rejected": {"invalid_field": 2, "no_fx_rate": 1}, "duplicates": 1}
    assert r["roi"] == []


# ---------------------------------------------------------------------------
# Rule 6: currency; configuration is its final state
# ---------------------------------------------------------------------------


def test_fx_rate_later_in_file_and_later_ts_still_applies():
    r = run(
        unlock("a1", "2026-11-02T10:00:00+08:00", "u1", "2", "USD"),
        fx("fx1", "2027-01-01T00:00:00Z", "USD", "7", "2026-11-02"),  # arrives later, ts later
    )
    assert roi_rows(r)[("organic", "organic", "2026-11-02")]["revenue_iaa"] == "14.00"
    assert r["rejects"]["rejected"] == {}


def test_fx_rate_selection_by_local_date_and_upsert():
    r = run(
        fx("fx-a", "2026-01-01T00:00:00Z", "USD", "7", "2026-11-01"),
        fx("fx-b", "2026-01-02T00:00:00Z", "USD", "8", "2026-11-01"),  # later ts: wins the key
        fx("fx-c", "2026-01-03T00:00:00Z", "USD", "100", "2026-11-03"),  # not yet effective
        fx("fx-cny", "2026-01-01T00:00:00Z", "CNY", "3", "2026-01-01"),  # ignored
        # 2026-11-02T17:00Z is 11-03 01:00 in Shanghai -> rate 100
        unlock("a1", "2026-11-02T17:00:00Z", "u1", "1", "USD"),
        unlock("a2", "2026-11-02T15:59:59Z", "u2", "1", "USD"),  # 11-02 23:59:59 local -> 8
        unlock("a3", "2026-11-02T12:00:00+08:00", "u3", "1", "CNY"),
        unlock("a4", "2026-10-31T23:00:00+08:00", "u4", "1", "USD"),  # before any rate
    )
    rows = roi_rows(r)
    assert rows[("organic", "organic", "2026-11-03")]["revenue_iaa"] == "100.00"
    assert rows[("organic", "organic", "2026-11-02")]["revenue_iaa"] == "9.00"
    assert rows[("organic", "organic", "2026-11-02")]["new_users"] == 2
    assert r["rejects"]["rejected"] == {"no_fx_rate": 1}


def test_tie_on_ts_broken_by_greater_event_id():
    r = run(
        plan_cfg("pl-1", "2026-01-01T00:00:00Z", "pB", "cr-old", "0.5"),
        plan_cfg("pl-2", "2026-01-01T08:00:00+08:00", "pB", "cr-new", "0.1"),  # same instant, greater id
        click("c", "2026-11-02T09:00:00+08:00", "k", "d", plan="pB"),
        redirect("r", "2026-11-02T09:05:00+08:00", "u1", click_id="k"),
        payment("p", "2026-11-02T10:00:00+08:00", "o", "u1", "10"),
    )
    assert [(c["creator_id"], c["commission"]) for c in r["commission"]] == [("cr-new", "1.00")]


# ---------------------------------------------------------------------------
# ad_spend restatement
# ---------------------------------------------------------------------------


def test_restated_spend_and_no_fx_rate_version_never_counts():
    r = run(
        spend("s1", "2026-11-02T01:00:00+08:00", "cA", "2026-11-02T00:00:00+08:00", "100"),
        # same hour as an instant, written in UTC; restated later -> counts
        spend("s2", "2026-11-02T05:00:00+08:00", "cA", "2026-11-01T16:00:00Z", "80"),
        # latest of all, but no USD rate -> rejected; s2 still counts
        spend("s3", "2026-11-02T06:00:00+08:00", "cA", "2026-11-02T00:00:00+08:00", "1", "USD"),
        # another hour of the same local day
        spend("s4", "2026-11-02T06:00:00+08:00", "cA", "2026-11-02T23:00:00+08:00", "0.5"),
        # a campaign whose only spend is 0 still makes a row
        spend("s5", "2026-11-02T06:00:00+08:00", "cZ", "2026-11-02T03:00:00+08:00", "0"),
        # not hour-aligned in its own offset -> invalid_field
        spend("s6", "2026-11-02T06:00:00+08:00", "cA", "2026-11-02T03:30:00+08:00", "1"),
        # hour-aligned in its own +05:30 offset (= 03:30 Shanghai): fine
        spend("s7", "2026-11-02T06:00:00+08:00", "cA", "2026-11-02T01:00:00+05:30", "1"),
    )
    rows = roi_rows(r)
    assert rows[("campaign", "cA", "2026-11-02")]["spend"] == "81.50"
    z = rows[("campaign", "cZ", "2026-11-02")]
    assert z["spend"] == "0.00" and z["new_users"] == 0 and z["roi_d0"] is None
    assert r["rejects"] == {"rejected": {"no_fx_rate": 1, "invalid_field": 1}, "duplicates": 0}


# ---------------------------------------------------------------------------
# Rules 1-3: attribution and windows
# ---------------------------------------------------------------------------


def test_view_through_and_view_window_bounds():
    T = "2026-11-02T12:00:00+08:00"
    at_edge = run(impression("i", "2026-11-01T12:00:00+08:00", "d", "cA"), redirect("r", T, "u", device="d"))
    assert source_of_user(at_edge) == ("campaign", "cA", "2026-11-02")
    too_old = run(impression("i", "2026-11-01T11:59:59+08:00", "d", "cA"), redirect("r", T, "u", device="d"))
    assert source_of_user(too_old) == ("organic", "organic", "2026-11-02")
    # fractional seconds are compared exactly
    just_old = run(impression("i", "2026-11-01T11:59:59.999999999+08:00", "d", "cA"), redirect("r", T, "u", device="d"))
    assert source_of_user(just_old)[0] == "organic"
    after = run(impression("i", "2026-11-02T12:00:00.000000001+08:00", "d", "cA"), redirect("r", T, "u", device="d"))
    assert source_of_user(after)[0] == "organic"
    same_instant = run(impression("i", "2026-11-02T04:00:00Z", "d", "cA"), redirect("r", T, "u", device="d"))
    assert source_of_user(same_instant)[0] == "campaign"
    # a click anywhere in the click window beats a more recent impression
    both = run(
        impression("i", "2026-11-02T11:59:00+08:00", "d", "cImp"),
        click("c", "2026-10-27T12:00:00+08:00", "k", "d", campaign="cClick"),
        redirect("r", T, "u", device="d"),
    )
    assert source_of_user(both)[:2] == ("campaign", "cClick")


def test_click_window_bounds_inclusive():
    T = "2026-11-08T12:00:00+08:00"
    edge = run(click("c", "2026-11-01T12:00:00+08:00", "k", "d1", campaign="cA"), redirect("r", T, "u", click_id="k"))
    assert source_of_user(edge)[:2] == ("campaign", "cA")
    old = run(click("c", "2026-11-01T11:59:59+08:00", "k", "d1", campaign="cA"), redirect("r", T, "u", click_id="k"))
    assert source_of_user(old)[:2] == ("organic", "organic")
    at_t = run(click("c", T, "k", "d1", campaign="cA"), redirect("r", T, "u", device="d1"))
    assert source_of_user(at_t)[:2] == ("campaign", "cA")
    # custom windows
    short = run(
        click("c", "2026-11-08T11:00:00+08:00", "k", "d1", campaign="cA"),
        redirect("r", T, "u", device="d1"),
        click_window_s=3599,
    )
    assert source_of_user(short)[:2] == ("organic", "organic")


def test_source_precedence():
    T = "2026-11-02T12:00:00+08:00"
    r = run(
        # k matches two clicks in window: the latest one (other device) wins over device clicks
        click("c1", "2026-11-02T10:00:00+08:00", "k", "dX", campaign="cK1"),
        click("c2", "2026-11-02T11:00:00+08:00", "k", "dY", plan="pK2"),
        click("c3", "2026-11-02T11:30:00+08:00", "other", "d", campaign="cDev"),
        redirect("r", T, "u", click_id="k", device="d"),
    )
    assert source_of_user(r)[:2] == ("plan", "pK2")
    # click_id with no click in window -> falls through to device clicks
    r = run(
        click("c1", "2026-11-02T12:00:01+08:00", "k", "dX", campaign="cK1"),  # after T
        click("c3", "2026-11-02T11:30:00+08:00", "other", "d", campaign="cDev"),
        redirect("r", T, "u", click_id="k", device="d"),
    )
    assert source_of_user(r)[:2] == ("campaign", "cDev")
    # ties on ts: greater event_id is "latest"
    r = run(
        click("c-b", "2026-11-02T11:00:00+08:00", "k1", "d", campaign="cB"),
        click("c-a", "2026-11-02T11:00:00+08:00", "k2", "d", campaign="cA"),
        redirect("r", T, "u", device="d"),
    )
    assert source_of_user(r)[:2] == ("campaign", "cB")


def test_earliest_redirect_and_money_before_acquisition():
    r = run(
        click("c", "2026-11-01T10:00:00+08:00", "k", "d", campaign="cA"),
        # payment on 10-30, before the user's acquisition; money precedes T
        payment("p", "2026-10-30T10:00:00+08:00", "o", "u", "5"),
        redirect("r2", "2026-11-05T10:00:00+08:00", "u"),  # later redirect: ignored
        redirect("r1", "2026-11-01T10:30:00+08:00", "u", click_id="k"),
        unlock("a", "2026-11-20T10:00:00+08:00", "u", "1"),  # D19: only in total
    )
    row = source_of_user(r)
    assert row == ("campaign", "cA", "2026-11-01")
    rr = roi_rows(r)[row]
    assert (rr["revenue_d0"], rr["revenue_d7"], rr["revenue_total"]) == ("5.00", "5.00", "6.00")


def test_user_with_money_and_no_redirect_is_organic_by_earliest_money():
    r = run(
        unlock("a", "2026-11-04T10:00:00+08:00", "u", "1"),
        payment("p", "2026-11-03T23:59:59+08:00", "o", "u", "2"),
        # an unlock with no fx rate is not money for the cohort date
        unlock("b", "2026-11-01T10:00:00+08:00", "u", "1", "EUR"),
    )
    assert source_of_user(r) == ("organic", "organic", "2026-11-03")
    row = roi_rows(r)[("organic", "organic", "2026-11-03")]
    assert (row["revenue_d0"], row["revenue_d1"], row["payers"]) == ("2.00", "3.00", 1)


def test_unconfigured_plan_sources_users_but_earns_no_commission():
    r = run(
        click("c", "2026-11-02T09:00:00+08:00", "k", "d", plan="pNone"),
        redirect("r", "2026-11-02T09:05:00+08:00", "u", click_id="k"),
        payment("p", "2026-11-02T10:00:00+08:00", "o", "u", "10"),
    )
    rows = roi_rows(r)
    assert rows[("plan", "pNone", "2026-11-02")]["commission"] == "0.00"
    assert r["commission"] == []


def test_ad_unlock_earns_no_commission():
    r = run(
        plan_cfg("pl", "2026-01-01T00:00:00Z", "pB", "cr1", "0.5"),
        click("c", "2026-11-02T09:00:00+08:00", "k", "d", plan="pB"),
        redirect("r", "2026-11-02T09:05:00+08:00", "u", click_id="k"),
        unlock("a", "2026-11-02T10:00:00+08:00", "u", "10"),
    )
    assert roi_rows(r)[("plan", "pB", "2026-11-02")]["commission"] == "0.00"
    assert r["commission"] == []


# ---------------------------------------------------------------------------
# Rounding
# ---------------------------------------------------------------------------


def test_rounding_half_away_from_zero_and_no_negative_zero():
    r = run(
        plan_cfg("pl", "2026-01-01T00:00:00Z", "pB", "cr1", "0.001"),
        click("c", "2026-11-02T09:00:00+08:00", "k", "d", plan="pB"),
        redirect("r", "2026-11-02T09:05:00+08:00", "u", click_id="k"),
        payment("p", "2026-11-02T10:00:00+08:00", "o", "u", "5.0000"),  # commission 0.005 -> 0.01
        refund("f", "2026-11-03T10:00:00+08:00", "o", "4"),  # take back 0.004 -> -0.00 -> "0.00"
        spend("s", "2026-11-02T10:00:00+08:00", "cA", "2026-11-02T10:00:00+08:00", "3"),
        click("c2", "2026-11-02T09:00:00+08:00", "k2", "d2", campaign="cA"),
        redirect("r2", "2026-11-02T09:05:00+08:00", "u2", click_id="k2"),
        payment("p2", "2026-11-02T10:00:00+08:00", "o2", "u2", "0.00005"),  # 5 frac digits: invalid
        payment("p3", "2026-11-02T10:00:00+08:00", "o3", "u2", "1.00015"),  # invalid
        payment("p4", "2026-11-02T10:00:00+08:00", "o4", "u2", "0.0002"),
    )
    c = {x["date"]: x for x in r["commission"]}
    assert c["2026-11-02"]["commission"] == "0.01"
    assert c["2026-11-03"]["commission"] == "0.00"
    assert c["2026-11-03"]["net"] == "-4.00"
    cA = roi_rows(r)[("campaign", "cA", "2026-11-02")]
    assert cA["revenue_iap"] == "0.00"
    assert cA["roi_d0"] == "0.0001"  # 0.0002 / 3 = 0.0000666... -> 0.0001
    assert r["rejects"]["rejected"] == {"invalid_field": 2}
