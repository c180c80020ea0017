"""SPEC sections 2 and 4: validation, rejection reasons, original bytes kept."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from attribution import testing as kit
from schemas.decode import Invalid, decode
from schemas.events import EVENT_TYPES, Payment
from schemas.jsonschema import event_json_schemas
from schemas.upcast import upcast


def reason(raw: bytes) -> str | None:
    result = decode(raw)
    return result.reason if isinstance(result, Invalid) else None


def pay(**kw: object) -> bytes:
    return kit.payment(event_id="e1", order_id="o1", **kw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'"a string"', "invalid_json"),
        (b'{"event_id":"x","ts":"2026-11-02T00:00:00Z"}', "invalid_field"),
        (b'{"type":null,"event_id":"x","ts":"2026-11-02T00:00:00Z"}', "invalid_field"),
        (b'{"type":7,"event_id":"x"}', "invalid_field"),
        (b'{"type":"purchase","event_id":"x"}', "unknown_type"),
        (b'{"type":"purchase"}', "unknown_type"),  # unknown type wins over bad fields
        (pay(amount="-1"), "invalid_field"),
        (pay(amount=-1), "invalid_field"),
        (pay(amount="1.00001"), "invalid_field"),
        (pay(amount="1e3"), "invalid_field"),
        (pay(amount=" 1"), "invalid_field"),
        (pay(amount="1000000000000"), "invalid_field"),
        (pay(amount=True), "invalid_field"),
        (pay(amount=None), "invalid_field"),
        (pay(currency="usd"), "invalid_field"),
        (pay(currency="USDT"), "invalid_field"),
        (pay(kind="gift"), "invalid_field"),
        (pay(user_id=17), "invalid_field"),
        (pay(user_id=""), "invalid_field"),
        (pay(user_id="u" * 129), "invalid_field"),
        (pay(ts="2026-11-02T00:00:00"), "invalid_field"),
        (pay(ts="2026-11-02 00:00:00+08:00"), "invalid_field"),
        (pay(ts="2026-13-02T00:00:00Z"), "invalid_field"),
        (pay(ts=1762000000), "invalid_field"),
        (pay(schema_version="1"), "invalid_field"),
        (pay(schema_version=True), "invalid_field"),
        (kit.click(campaign_id="c", plan_id="p"), "invalid_field"),
        (kit.click(campaign_id=None, plan_id=None), "invalid_field"),
        (kit.spend(period_start="2026-11-02T00:30:00+08:00"), "invalid_field"),
        (kit.fx(rate="0"), "invalid_field"),
        (kit.fx(effective_date="2026-11-2"), "invalid_field"),
        (kit.plan(commission_rate="1.5"), "invalid_field"),
        (kit.redirect(host="web"), "invalid_field"),
        (pay(), None),
        (pay(amount="12.50000"), None),
        (pay(amount=12), None),
        (pay(schema_version=None), None),
        (pay(extra_field={"anything": 1}), None),
        (kit.spend(period_start="2026-11-02T00:00:00+05:30"), None),
        (kit.fx(rate="7.123456789012345678901"), None),
    ],
)
def test_structural_validation(raw: bytes, expected: str | None) -> None:
    assert reason(raw) == expected


def test_json_numbers_are_exact_not_floats() -> None:
    event = decode(
        b'{"type":"refund","event_id":"r","ts":"2026-11-02T00:00:00Z","order_id":"o","amount":0.1,"currency":"CNY"}'
    )
    assert not isinstance(event, Invalid)
    assert event.amount == Decimal("0.1")  # type: ignore[attr-defined]
    rate = decode(kit.fx(rate="RATE").replace(b'"RATE"', b"7.12345678901234567890123"))
    assert rate.rate == Decimal("7.12345678901234567890123")  # type: ignore[union-attr]
    huge = decode(pay(amount="HUGE").replace(b'"HUGE"', b"1" + b"0" * 25))
    assert isinstance(huge, Invalid) and huge.reason == "invalid_field"


def test_null_means_absent_and_models_are_frozen() -> None:
    event = decode(kit.redirect(click_id=None, device_id=None))
    assert not isinstance(event, Invalid)
    assert event.click_id is None  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        event.user_id = "other"  # type: ignore[misc]


def test_every_rejection_reason_is_produced_with_its_original_bytes() -> None:
    lines = [
        b"{not json",
        b'{"type":"mystery","event_id":"m1","ts":"2026-11-02T00:00:00Z"}',
        kit.click(event_id="bad-click", campaign_id="c", plan_id="p"),
        kit.payment(event_id="eur", order_id="o-eur", currency="EUR"),
        kit.refund(event_id="lost", order_id="o-none"),
        kit.payment(event_id="p1", order_id="o1", amount="10"),
        kit.refund(event_id="too-much", order_id="o1", amount="11"),
    ]
    folded = kit.run(lines)
    rejections = folded.active("rejections")
    by_reason = {r.reason: r.raw for r in rejections.values()}
    assert set(by_reason) == {
        "invalid_json",
        "unknown_type",
        "invalid_field",
        "no_fx_rate",
        "unknown_order",
        "refund_exceeds_payment",
    }
    assert by_reason["invalid_json"] == b"{not json"
    assert by_reason["refund_exceeds_payment"] == lines[-1]
    assert all(r.detail for r in rejections.values())


def test_invalid_lines_are_rejected_every_time_valid_copies_are_duplicates() -> None:
    bad = b"{oops"
    good = kit.payment(event_id="p", order_id="o", currency="EUR")  # rejected no_fx_rate
    folded = kit.run([bad, bad, good, good])
    facts = folded.facts()
    assert facts["structural_rejections"] == ["invalid_json", "invalid_json"]
    assert facts["state_rejections"] == {"event:p": "no_fx_rate"}
    assert facts["event_duplicates"] == 1


def _cents_to_amount(payload: dict) -> dict:  # type: ignore[type-arg]
    out = {k: v for k, v in payload.items() if k != "amount_cents"}
    out["amount"] = f"{payload['amount_cents'] // 100}.{payload['amount_cents'] % 100:02d}"
    out["schema_version"] = 1
    return out


def test_a_registered_upcaster_rewrites_an_old_layout(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from schemas import upcast as registry

    v0 = {"type": "payment", "schema_version": 0, "amount_cents": 1299, "event_id": "e"}
    assert upcast(v0) == v0  # nothing registered: every version is the current layout (SPEC 2)
    monkeypatch.setitem(registry.UPCASTERS, ("payment", 0), _cents_to_amount)
    assert upcast(v0) == {"type": "payment", "schema_version": 1, "amount": "12.99", "event_id": "e"}
    raw = orjson.dumps({**v0, "ts": "2026-11-02T00:00:00Z", "order_id": "o", "user_id": "u", "drama_id": "d",
                        "amount_cents": 990, "currency": "CNY", "kind": "unlock"})  # fmt: skip
    event = decode(raw)
    assert isinstance(event, Payment) and event.amount == Decimal("9.90") and event.schema_version == 1


def test_an_unregistered_version_keeps_its_fields() -> None:
    raw = orjson.dumps({"type": "payment", "schema_version": 0, "event_id": "e", "ts": "2026-11-02T00:00:00Z",
                        "order_id": "o", "user_id": "u", "drama_id": "d", "amount": "30.00", "amount_cents": 100,
                        "currency": "CNY", "kind": "unlock"})  # fmt: skip
    event = decode(raw)
    assert isinstance(event, Payment) and event.amount == Decimal("30.00") and event.schema_version == 0


def test_json_schema_covers_every_event_type() -> None:
    schema = event_json_schemas()
    assert set(schema["$defs"]) == set(EVENT_TYPES)
    payment = schema["$defs"]["payment"]
    assert {"order_id", "amount", "currency", "kind"} <= set(payment["required"])
    assert payment["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
