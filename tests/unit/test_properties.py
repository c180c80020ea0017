"""SPEC 3.8: the facts are a function of the set of events.

Shuffling, duplicating and splitting the events into arbitrary batches must
give the same final facts (and so the same reports) as one sorted batch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution import testing as kit

BASE = datetime(2026, 11, 2, tzinfo=UTC)
USERS = ["u1", "u2", "u3"]
DEVICES = ["d1", "d2", "d3"]
CLICKS = ["k1", "k2", "k3"]
ORDERS = ["o1", "o2", "o3"]


def ts(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


minutes = st.integers(min_value=-10 * 1440, max_value=10 * 1440).map(lambda m: m - m % 30)
amounts = st.sampled_from(["1", "5.50", "10", "30.00", "0"])
currency = st.sampled_from(["CNY", "CNY", "USD", "EUR"])
source = st.one_of(
    st.sampled_from(["cA", "cB"]).map(lambda c: {"campaign_id": c}),
    st.sampled_from(["pA", "pB"]).map(lambda p: {"plan_id": p}),
)

event = st.one_of(
    st.builds(lambda m, k, d, s: kit.click(ts=ts(m), click_id=k, device_id=d, **s), minutes, st.sampled_from(CLICKS), st.sampled_from(DEVICES), source),
    st.builds(lambda m, d, c: kit.impression(ts=ts(m), device_id=d, campaign_id=c), minutes, st.sampled_from(DEVICES), st.sampled_from(["cA", "cB"])),
    st.builds(
        lambda m, u, k, d: kit.redirect(ts=ts(m), user_id=u, click_id=k, device_id=d),
        minutes, st.sampled_from(USERS), st.sampled_from([*CLICKS, ...]), st.sampled_from([*DEVICES, ...]),
    ),
    st.builds(
        lambda m, u, o, a, c: kit.payment(ts=ts(m), user_id=u, order_id=o, amount=a, currency=c),
        minutes, st.sampled_from(USERS), st.sampled_from(ORDERS), amounts, currency,
    ),
    st.builds(lambda m, o, a, c: kit.refund(ts=ts(m), order_id=o, amount=a, currency=c), minutes, st.sampled_from(ORDERS), amounts, currency),
    st.builds(lambda m, u, a, c: kit.ad_unlock(ts=ts(m), user_id=u, revenue=a, currency=c), minutes, st.sampled_from(USERS), amounts, currency),
    st.builds(
        lambda m, h, c, a, cur: kit.spend(ts=ts(m), campaign_id=c, period_start=ts(h * 60 - (h * 60) % 60), amount=a, currency=cur),
        minutes, st.integers(-48, 48), st.sampled_from(["cA", "cB"]), amounts, currency,
    ),
    st.builds(lambda m, r, d: kit.fx(ts=ts(m), currency="USD", rate=r, effective_date=d), minutes, st.sampled_from(["7.1", "6.9"]), st.sampled_from(["2026-10-28", "2026-11-02"])),
    st.builds(lambda m, p, r: kit.plan(ts=ts(m), plan_id=p, commission_rate=r), minutes, st.sampled_from(["pA", "pB"]), st.sampled_from(["0.3", "0.1"])),
    st.sampled_from([b"not json", b"[1,2]", b'{"type":"nope","event_id":"x","ts":"2026-11-02T00:00:00Z"}']),
)  # fmt: skip

scenario = st.lists(event, min_size=1, max_size=40)


def ts_key(raw: bytes) -> str:
    return raw.split(b'"ts":"', 1)[1][:20].decode() if b'"ts":"' in raw else ""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario, st.randoms(use_true_random=False), st.lists(st.integers(1, 7), max_size=20))
def test_shuffle_duplicate_and_split_give_the_same_facts(lines, rnd, splits):
    reference = kit.run(sorted(lines, key=ts_key)).facts()
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    copies = [line for line in shuffled for _ in range(rnd.choice([1, 1, 2]))]
    extra = len(copies) - len(shuffled)
    facts = kit.run(copies, batch_sizes=splits).facts()
    invalid = sum(1 for line in copies if not line.startswith(b'{"type":"') or b'"nope"' in line)
    # structurally invalid lines are rejected every time; valid copies are duplicates
    assert facts["event_duplicates"] - reference["event_duplicates"] == extra - (
        invalid - len(reference["structural_rejections"])
    )
    for key in ("users", "money", "spend", "plans", "fx", "state_rejections", "order_duplicates"):
        assert facts[key] == reference[key], key


@settings(max_examples=60, deadline=None)
@given(scenario, st.randoms(use_true_random=False))
def test_one_event_at_a_time_equals_one_batch(lines, rnd):
    reference = kit.run(lines).facts()
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    facts = kit.run(shuffled, batch_sizes=[1] * len(shuffled)).facts()
    for key in ("users", "money", "spend", "state_rejections", "order_duplicates"):
        assert facts[key] == reference[key], key
