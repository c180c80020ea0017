"""The postback stage (attribution/stages/postbacks.py), one rule part at a time (SPEC 7)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest

from attribution.clock import TICKS_PER_SECOND, TICKS_PER_US
from attribution.outputs import PostbackDecision
from attribution.policy import Policy
from attribution.stages import wire
from attribution.stages.postbacks import PostbackStage, idempotency_key, in_share
from attribution.stages.records import (
    CAMPAIGN,
    POSTBACKS,
    RULE,
    CallbackIn,
    ClockIn,
    ConfigIn,
    ConversionsIn,
    SendPostback,
    StageRecord,
)

T0 = 1_790_000_000 * TICKS_PER_SECOND  # a whole second, in ticks
SETTLE = 600


def s(seconds: float) -> int:
    """Ticks ``seconds`` after T0."""
    return T0 + int(Decimal(str(seconds)) * TICKS_PER_SECOND)


def us(seconds: float) -> int:
    return s(seconds) // TICKS_PER_US


class Run:
    """A postback stage partition fed by hand, at positions 1, 2, …"""

    def __init__(self, settle_s: float = SETTLE) -> None:
        self.stage = PostbackStage(Policy(), settle_s)
        self.at = 0
        self.rows: dict[str, PostbackDecision] = {}
        self.versions: dict[str, int] = {}
        self.sent: list[PostbackDecision] = []
        self.log: list[StageRecord] = []

    def feed(self, *records: StageRecord) -> list[PostbackDecision]:
        """Apply records; returns the decision rows they emitted."""
        out = []
        for record in records:
            self.at += 1
            self.log.append(record)
            self.stage.apply(record, self.at)
            facts, emits = self.stage.flush()
            for fact in facts:
                assert fact.kind == "postback" and fact.version == self.at
                self.rows[fact.row.key] = fact.row
                self.versions[fact.row.key] = fact.version
                out.append(fact.row)
            for emit in emits:
                assert emit.topic == POSTBACKS and isinstance(emit.record, SendPostback)
                assert emit.record.route == emit.record.decision.key
                self.sent.append(emit.record.decision)
        return out

    def clock(self, seconds: float) -> list[PostbackDecision]:
        return self.feed(ClockIn(s(seconds)))

    def by(self, kind: str, who: str) -> PostbackDecision:
        (row,) = [r for r in self.rows.values() if r.kind == kind and (r.order_id or r.user_id) == who]
        return row


def callback(click: str = "c1", campaign: str = "cA", token: str = "cb-1", at: float = 0) -> CallbackIn:
    return CallbackIn(click, s(at), campaign, token, "t:1")


def converted(
    click: str = "c1",
    user: str = "u1",
    version: int = 1,
    campaign: str = "cA",
    acquired: float = 10,
    payments: tuple[tuple[str, float, str], ...] = (),
) -> ConversionsIn:
    """``payments``: (order_id, seconds after T0, value); event ids ``p-<order>``."""
    pays = tuple(sorted((o, f"p-{o}", us(t), Decimal(v)) for o, t, v in payments))
    return ConversionsIn(click, user, version, campaign, s(acquired) if campaign else 0, pays)


def moved_away(click: str = "c1", user: str = "u1", version: int = 9) -> ConversionsIn:
    return ConversionsIn(click, user, version, "", 0, ())


def rule(
    kinds: tuple[str, ...], min_amount: str | None = None, ratio: str = "1", at: float = -100, campaign: str = "cA"
) -> ConfigIn:
    minimum = None if min_amount is None else Decimal(min_amount)
    return ConfigIn(RULE, campaign, s(at), f"rule-{kinds}-{at}", (kinds, minimum, Decimal(ratio)), "")


def campaign(platform: str = "douyin", at: float = -100, campaign_id: str = "cA") -> ConfigIn:
    return ConfigIn(CAMPAIGN, campaign_id, s(at), f"camp-{platform}-{at}", (platform, "dr1", "b1", None), "")


# --------------------------------------------------------------------------- the hash and the key


def test_the_ratio_hash_is_sha256_of_the_order_id_exactly() -> None:
    # first 8 bytes of SHA-256: o1 2352da7280f1decc (0.1379…), o2 9250b9912ee91d6b (0.5715…)
    assert in_share("o1", Decimal("0.5")) and not in_share("o2", Decimal("0.5"))
    assert in_share("o2", Decimal("0.572")) and not in_share("o2", Decimal("0.571"))
    share = 0x2352DA7280F1DECC * 5**64  # o1's share is share·10^-64, exactly
    assert not in_share("o1", Decimal(f"{share}E-64"))  # below, not at
    assert in_share("o1", Decimal(f"{share * 10 + 1}E-65"))
    assert not in_share("o1", Decimal(f"{share * 10 - 1}E-65"))
    assert not any(in_share(o, Decimal(0)) for o in ("o1", "o2", "o3", "订单-7"))
    assert all(in_share(o, Decimal(1)) for o in ("o1", "o2", "o3", "订单-7"))


def test_the_idempotency_key_names_platform_callback_kind_and_order_or_user() -> None:
    assert idempotency_key("oceanengine", "cb", "pay", "o1") == hashlib.sha256(b"oceanengine|cb|pay|o1").hexdigest()
    run = Run()
    run.feed(campaign("douyin"), callback(token="tok"), converted(payments=(("o1", 20, "6"),)))
    run.clock(SETTLE + 20)
    act, pay = run.by("activate", "u1"), run.by("pay", "o1")
    assert act.key == hashlib.sha256(b"oceanengine|tok|activate|u1").hexdigest()
    assert pay.key == hashlib.sha256(b"oceanengine|tok|pay|o1").hexdigest()
    assert (pay.platform, pay.campaign_id, pay.click_event_id, pay.callback) == ("oceanengine", "cA", "c1", "tok")


@pytest.mark.parametrize(
    ("platform", "sender"), [("douyin", "oceanengine"), ("tencent", "tencent"), ("kuaishou", "kuaishou"),
                             ("tiktok", ""), ("other", ""), (None, "")],
)  # fmt: skip
def test_the_platform_is_the_campaigns_sender(platform: str | None, sender: str) -> None:
    run = Run()
    if platform is not None:
        run.feed(campaign(platform))
    run.feed(callback(), converted())
    (row,) = run.clock(SETTLE + 10)
    assert row.platform == sender and row.decision == "send"


# --------------------------------------------------------------------------- the settle delay


def test_decided_once_the_clock_reaches_ts_plus_the_settle_delay_and_then_final() -> None:
    run = Run()
    run.feed(callback(), converted(acquired=10, payments=(("o1", 100, "6"),)))
    assert run.feed(ClockIn(s(SETTLE + 10) - 1)) == []  # one tick short
    (act,) = run.feed(ClockIn(s(SETTLE + 10)))
    assert (act.kind, act.decision, act.conversion_us, act.decided_us) == ("activate", "send", us(10), us(SETTLE + 10))
    assert run.clock(SETTLE + 99) == []
    (pay,) = run.clock(SETTLE + 150)
    assert (pay.order_id, pay.amount, pay.conversion_us, pay.decided_us) == (
        "o1",
        Decimal(6),
        us(100),
        us(SETTLE + 150),
    )
    assert run.sent == [act, pay]
    # what is learnt later changes nothing: a rule that would hold them, the payment worth less
    run.feed(rule(("first_pay",), min_amount="100", at=50), converted(version=2, payments=(("o1", 100, "1"),)))
    assert run.clock(SETTLE + 900) == [] and len(run.sent) == 2


def test_the_settle_delay_is_a_parameter() -> None:
    run = Run(settle_s=0.5)
    run.feed(callback(), converted(acquired=10))
    assert run.clock(10.4) == []
    assert [r.decision for r in run.clock(10.5)] == ["send"]


def test_a_conversion_arriving_after_its_moment_waits_for_the_next_clock() -> None:
    run = Run()
    run.feed(callback(), ClockIn(s(5000)))
    assert run.feed(converted(acquired=10)) == []  # not on arrival: the user stage may still be settling
    (row,) = run.clock(5000)
    assert row.decided_us == us(5000) and row.conversion_us == us(10)


def test_a_click_without_its_callback_waits_and_without_one_nothing_is_decided() -> None:
    run = Run()
    run.feed(converted(click="c1"), converted(click="c2", user="u2"))
    assert run.clock(SETTLE + 100) == []
    run.feed(callback(click="c1"))
    assert [r.click_event_id for r in run.clock(SETTLE + 101)] == ["c1"]
    assert run.clock(10**6) == []  # c2 never had a callback
    assert {r.click_event_id for r in run.rows.values()} == {"c1"}


# --------------------------------------------------------------------------- the rule


def test_no_rule_sends_activate_and_every_pay() -> None:
    run = Run()
    run.feed(callback(), converted(payments=(("o1", 20, "6"), ("o2", 30, "0.01"))))
    run.clock(10**4)
    assert {r.kind + ":" + (r.order_id or r.user_id): r.decision for r in run.rows.values()} == {
        "activate:u1": "send", "pay:o1": "send", "pay:o2": "send",
    }  # fmt: skip
    assert all("no rule" in r.detail for r in run.rows.values())


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (("activate",), {"u1": "send", "o1": "held_kind", "o2": "held_kind"}),
        (("first_pay",), {"u1": "held_kind", "o1": "held_kind", "o2": "send"}),
        (("every_pay",), {"u1": "held_kind", "o1": "send", "o2": "send"}),
        (("activate", "first_pay"), {"u1": "send", "o1": "held_kind", "o2": "send"}),
        (("first_pay", "every_pay"), {"u1": "held_kind", "o1": "send", "o2": "send"}),
        ((), {"u1": "held_kind", "o1": "held_kind", "o2": "held_kind"}),
    ],
)
def test_the_rules_kinds(kinds: tuple[str, ...], expected: dict[str, str]) -> None:
    run = Run()
    # o2 is the user's first pay (earlier), though o1 sorts first
    run.feed(rule(kinds), callback(), converted(payments=(("o1", 40, "6"), ("o2", 30, "6"))))
    run.clock(10**4)
    assert {r.order_id or r.user_id: r.decision for r in run.rows.values()} == expected
    assert all(r.detail.startswith("rule ") for r in run.rows.values())
    assert sorted(run.sent) == sorted(r for r in run.rows.values() if r.decision == "send")


def test_min_amount_holds_smaller_pays_in_the_reporting_currency_and_not_activates() -> None:
    run = Run()
    run.feed(rule(("activate", "every_pay"), min_amount="6"), callback())
    run.feed(converted(payments=(("o1", 20, "5.9999"), ("o2", 30, "6"), ("o3", 40, "6.0000000001"))))
    run.clock(10**4)
    assert {r.order_id or r.user_id: r.decision for r in run.rows.values()} == {
        "u1": "send", "o1": "held_min_amount", "o2": "send", "o3": "send",
    }  # fmt: skip
    assert "below min_amount 6" in run.by("pay", "o1").detail


def test_send_ratio_picks_pays_by_the_hash_of_their_order_id() -> None:
    run = Run()
    run.feed(rule(("activate", "every_pay"), ratio="0.5"), callback())
    run.feed(converted(payments=(("o1", 20, "6"), ("o2", 30, "6"), ("o3", 40, "6"), ("o4", 50, "6"))))
    run.clock(10**4)
    assert {r.order_id or r.user_id: r.decision for r in run.rows.values()} == {
        "u1": "send", "o1": "send", "o2": "held_ratio", "o3": "held_ratio", "o4": "send",
    }  # fmt: skip


def test_min_amount_is_judged_before_the_ratio() -> None:
    run = Run()
    run.feed(rule(("every_pay",), min_amount="10", ratio="0"), callback(), converted(payments=(("o1", 20, "6"),)))
    run.feed(converted(user="u2", payments=(("o2", 20, "60"),)))
    run.clock(10**4)
    assert (run.by("pay", "o1").decision, run.by("pay", "o2").decision) == ("held_min_amount", "held_ratio")


def test_the_rule_and_platform_are_those_in_force_when_the_conversion_settles() -> None:
    run = Run()
    run.feed(campaign("douyin", at=-100), campaign("tencent", at=SETTLE + 25))
    run.feed(rule(("activate",), at=-100), rule(("every_pay",), at=SETTLE + 25))  # both known before deciding
    run.feed(callback(), converted(acquired=10, payments=(("o1", 30, "6"),)))
    run.clock(10**4)
    act, pay = run.by("activate", "u1"), run.by("pay", "o1")
    assert (act.decision, act.platform) == ("send", "oceanengine")  # settled at 610: the later versions came at 625
    assert (pay.decision, pay.platform) == ("send", "tencent")  # settled at 630
    assert act.key == idempotency_key("oceanengine", "cb-1", "activate", "u1")


def test_each_user_of_a_click_activates_once_and_an_order_pays_once() -> None:
    run = Run()
    run.feed(callback(), converted(payments=(("o1", 20, "6"),)), converted(user="u2", payments=(("o1", 20, "6"),)))
    run.clock(10**4)
    assert sorted((r.kind, r.order_id or r.user_id) for r in run.rows.values()) == [
        ("activate", "u1"), ("activate", "u2"), ("pay", "o1"),
    ]  # fmt: skip
    assert run.by("pay", "o1").user_id == "u1"


# --------------------------------------------------------------------------- superseded


def test_a_user_moving_away_supersedes_its_decisions_and_the_new_click_decides_its_own() -> None:
    run = Run()
    run.feed(callback("c1", token="old"), callback("c2", token="new"))
    run.feed(converted("c1", payments=(("o1", 20, "6"),)))
    run.clock(10**4)
    sent_before = list(run.sent)
    assert len(sent_before) == 2
    run.feed(moved_away("c1", version=5), converted("c2", version=5, payments=(("o1", 20, "6"),)))
    assert run.rows[sent_before[0].key].decision == "send"  # not before the next clock
    run.clock(10**4)
    old = [run.rows[d.key] for d in sent_before]
    assert [r.decision for r in old] == ["superseded", "superseded"]
    assert all(r.detail.startswith("the user's source moved to another click; was send") for r in old)
    assert [(r.decided_us, r.callback) for r in old] == [(d.decided_us, "old") for d in sent_before]
    new = [r for r in run.rows.values() if r.click_event_id == "c2"]
    assert sorted(r.decision for r in new) == ["send", "send"] and {r.callback for r in new} == {"new"}
    assert len(run.sent) == 4  # nothing is unsent; the new click's are sent too


def test_a_payment_no_longer_counted_is_superseded_and_restored_if_it_counts_again() -> None:
    run = Run()
    run.feed(callback(), converted(payments=(("o1", 20, "6"),)))
    run.clock(10**4)
    key = run.by("pay", "o1").key
    run.feed(converted(version=2))
    run.clock(10**4)
    assert run.rows[key].decision == "superseded" and "no longer counts" in run.rows[key].detail
    assert run.by("activate", "u1").decision == "send"
    run.feed(converted(version=3, payments=(("o1", 20, "6"),)))
    run.clock(10**4)
    assert run.rows[key].decision == "send" and run.versions[key] == run.at
    assert len(run.sent) == 2  # restored, not sent again


def test_older_versions_and_copies_change_nothing() -> None:
    run = Run()
    run.feed(callback(), callback(token="a copy"), converted(version=4, payments=(("o1", 20, "6"),)))
    run.feed(converted(version=3), ClockIn(s(10**4)), ClockIn(s(10)), ClockIn(s(10**4)))
    assert len(run.rows) == 2 and all(r.decision == "send" and r.callback == "cb-1" for r in run.rows.values())
    assert run.stage.clock == s(10**4)


# --------------------------------------------------------------------------- checkpoints and the wire


def _replay_from(run: Run, checkpoint: dict[str, bytes], cursor: int) -> list[tuple[int, PostbackDecision]]:
    stage = PostbackStage(Policy(), SETTLE)
    stage.restore(dict(checkpoint))
    out: list[tuple[int, Any]] = []
    for at, record in enumerate(run.log[cursor:], start=cursor + 1):
        stage.apply(record, at)
        out.extend((f.version, f.row) for f in stage.flush()[0])
    return out


def test_a_restored_partition_re_reading_the_tail_emits_the_same_under_the_same_versions() -> None:
    run = Run()
    script: list[StageRecord] = [
        rule(("activate", "first_pay"), min_amount="1"), campaign("kuaishou"), callback("c1"),
        converted("c1", payments=(("o1", 20, "6"),)), converted("c2", user="u2"), ClockIn(s(SETTLE + 15)),
        callback("c2", token="x"), ClockIn(s(SETTLE + 16)), moved_away("c1", version=7),
        converted("c2", user="u1", version=7, payments=(("o1", 20, "6"), ("o2", 900, "0.5"))),
        ClockIn(s(SETTLE + 40)), ClockIn(s(SETTLE + 2000)),
    ]  # fmt: skip
    emitted: list[tuple[int, PostbackDecision]] = []
    checkpoints: list[tuple[int, dict[str, bytes]]] = [(0, {})]
    for record in script:
        before = dict(run.versions)
        run.feed(record)
        emitted.extend((v, run.rows[k]) for k, v in run.versions.items() if before.get(k) != v)
        entries = dict(checkpoints[-1][1])
        for key, blob in run.stage.changed().items():
            if blob is None:
                entries.pop(key, None)
            else:
                entries[key] = blob
        checkpoints.append((run.at, entries))
    assert {r.decision for _, r in emitted} >= {"send", "held_kind", "superseded"}
    for cursor, entries in checkpoints:
        tail = _replay_from(run, entries, cursor)
        assert tail == [(v, r) for v, r in emitted if v > cursor]
    whole = PostbackStage(Policy(), SETTLE)
    whole.restore(run.stage.everything())
    assert whole.clock == run.stage.clock and whole.rules == run.stage.rules and whole.keys == run.stage.keys


def test_a_send_survives_the_wire_exactly() -> None:
    run = Run()
    run.feed(callback(token="https://x.example/cb?a=1&回传"), converted(payments=(("o1", 20, "12.3456"),)))
    run.clock(10**4)
    for decision in run.sent:
        record = SendPostback(decision)
        back = wire.decode(wire.encode(record))
        assert back == record and str(back.decision.amount) == str(decision.amount)
    with pytest.raises(ValueError):
        wire.decode(b'["P", ["user", 1, "u1", "campaign", "cA", "click_id", "2026-11-02", 0, true]]')
