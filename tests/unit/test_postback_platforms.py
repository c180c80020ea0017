"""Postback requests and verdicts per platform (streams/postback_platforms.py): pure, no server.

Each request is compared field by field with the documented shape
(docs/postbacks.md), and also passed through the test receivers' own check
(tests/streams/postback_receivers.py), written separately from the builder.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from attribution.outputs import PostbackDecision
from streams import postback_platforms as pp
from tests.streams.postback_receivers import check

CONVERSION_US = 1_764_590_400_123_456  # 2025-12-01T12:00:00.123456Z
NOW_S = 1_764_591_000
NONCE = "0123456789abcdef0123456789abcdef"
TOKEN = "tk-secret"
CALLBACKS = {
    "oceanengine": "B.oe1q2w3e4r5t6y7u8i9o0p",
    "tencent": "https://api.e.qq.com/v3.0/user_actions/add?cb=YWRzX3NlcnZpY2UsMTU4NDUxMDI3OQ&conv_id=10001",
    "kuaishou": "http://ad.partner.gifshow.com/track/activate?callback=DHAJASALKFyk1uCKBYCyXp-iIDS-uHDd_a5SJ9Dbwkqv",
}
NO_BASES = pp.Targets({}, TOKEN)


def decision(platform: str = "oceanengine", kind: str = "pay", **overrides: Any) -> PostbackDecision:
    order = overrides.pop("order_id", "o-1" if kind == "pay" else "")
    fields: dict[str, Any] = dict(
        key=hashlib.sha256(f"{platform}|{kind}|{order}".encode()).hexdigest(), platform=platform,
        campaign_id="c-1", click_event_id=f"{platform}:k-1", callback=CALLBACKS.get(platform, "cb"), user_id="u-1",
        order_id=order, kind=kind, amount=Decimal("12.345") if kind == "pay" else Decimal(0),
        conversion_us=CONVERSION_US, decided_us=CONVERSION_US + 600_000_000, decision="send", detail="",
    )  # fmt: skip
    fields.update(overrides)
    return PostbackDecision(**fields)


def built(d: PostbackDecision, targets: pp.Targets = NO_BASES) -> pp.Request:
    request = pp.build(d, targets, NOW_S, NONCE)
    assert isinstance(request, pp.Request), request
    return request


def passes_receiver_check(request: pp.Request, platform: str) -> None:
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {k.lower(): v for k, v in request.headers}
    problems, _ = check(platform, request.method, target, headers, request.body)
    if platform == "tencent" and problems == ["timestamp header more than 300 s off"]:
        return  # NOW_S is a fixed past instant here
    assert problems == []


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("amount", "fen", "text"),
    [
        ("12.345", 1235, "12.35"),
        ("12.344", 1234, "12.34"),
        ("6", 600, "6.00"),
        ("0.005", 1, "0.01"),
        ("0.3", 30, "0.30"),
    ],
)
def test_amount_units_round_half_up(amount: str, fen: int, text: str) -> None:
    assert pp.cents(Decimal(amount)) == fen
    assert pp.yuan(Decimal(amount)) == text


def test_outer_action_id_is_the_key_or_its_hash() -> None:
    key = hashlib.sha256(b"x").hexdigest()
    assert pp.outer_action_id(key) == key
    assert pp.outer_action_id("not a hash") == hashlib.sha256(b"not a hash").hexdigest()


# --------------------------------------------------------------------------- Ocean Engine


def test_oceanengine_pay_and_activate() -> None:
    pay = decision("oceanengine", "pay")
    request = built(pay)
    assert (request.method, request.url) == ("POST", "https://analytics.oceanengine.com/api/v2/conversion")
    assert dict(request.headers) == {"X-Idempotency-Key": pay.key, "Content-Type": "application/json"}
    assert orjson.loads(request.body) == {
        "event_type": "active_pay",
        "context": {"ad": {"callback": "B.oe1q2w3e4r5t6y7u8i9o0p"}},
        "timestamp": 1_764_590_400_123,
        "properties": {"pay_amount": 1235},
    }
    passes_receiver_check(request, "oceanengine")
    activate = built(decision("oceanengine", "activate"))
    assert orjson.loads(activate.body) == {
        "event_type": "active",
        "context": {"ad": {"callback": "B.oe1q2w3e4r5t6y7u8i9o0p"}},
        "timestamp": 1_764_590_400_123,
    }
    passes_receiver_check(activate, "oceanengine")


def test_oceanengine_base_url_and_callback_url() -> None:
    d = decision("oceanengine", callback="https://ad.oceanengine.com/track/activate/?callback=TOKEN%3D%3D&os=0")
    request = built(d, pp.Targets({"oceanengine": "http://127.0.0.1:8123/"}))
    assert request.url == "http://127.0.0.1:8123/api/v2/conversion"
    assert orjson.loads(request.body)["context"] == {"ad": {"callback": "TOKEN=="}}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"code":0,"message":"success"}', pp.SUCCESS),
        (200, b'{"code":50000,"message":"busy"}', pp.RETRYABLE),  # only 0 is documented; the rest is retried
        (200, b'{"code":40000,"message":"bad"}', pp.RETRYABLE),
        (200, b"<html>gateway</html>", pp.RETRYABLE),
        (400, b'{"code":40000}', pp.PERMANENT),
        (404, b"", pp.PERMANENT),
        (429, b"", pp.RETRYABLE),
        (401, b"", pp.RETRYABLE),
        (502, b"bad gateway", pp.RETRYABLE),
    ],
)
def test_oceanengine_answers(status: int, body: bytes, outcome: str) -> None:
    verdict = pp.judge("oceanengine", status, body)
    assert verdict.outcome == outcome
    assert verdict.answer.startswith(str(status)) and len(verdict.answer) <= pp.ANSWER_CHARS


# --------------------------------------------------------------------------- Tencent


def test_tencent_pay_with_token_and_activate_without() -> None:
    pay = decision("tencent", "pay")
    request = built(pay)
    assert (request.method, request.url) == ("POST", CALLBACKS["tencent"])
    assert dict(request.headers) == {
        "X-Idempotency-Key": pay.key,
        "Content-Type": "application/json",
        "access_token": TOKEN,
        "access-token": TOKEN,
        "timestamp": str(NOW_S),
        "nonce": NONCE,
    }
    assert orjson.loads(request.body) == {
        "actions": [
            {
                "outer_action_id": pay.key,
                "action_time": 1_764_590_400,
                "action_type": "PURCHASE",
                "action_param": {"value": 1235},
            }
        ]
    }
    passes_receiver_check(request, "tencent")
    activate = built(decision("tencent", "activate"), pp.Targets({}))
    assert "access_token" not in dict(activate.headers)
    (action,) = orjson.loads(activate.body)["actions"]
    assert action["action_type"] == "ACTIVATE_APP" and "action_param" not in action


def test_tencent_base_replaces_the_origin_only() -> None:
    request = built(decision("tencent"), pp.Targets({"tencent": "http://127.0.0.1:9001"}, TOKEN))
    assert request.url == "http://127.0.0.1:9001/v3.0/user_actions/add?cb=YWRzX3NlcnZpY2UsMTU4NDUxMDI3OQ&conv_id=10001"


@pytest.mark.parametrize(
    "callback",
    [
        "https://evil.example/v3.0/user_actions/add?cb=x",  # a callback naming another host: never followed
        "http://169.254.169.254/latest/meta-data/",
        "https://api.e.qq.com.evil.example/conv?cb=x",
        "YWRzX3NlcnZpY2UsMTU4NDUxMDI3OQ",  # not the URL Tencent hands out
    ],
)
def test_tencent_refuses_foreign_or_bare_callbacks(callback: str) -> None:
    refused = pp.build(decision("tencent", callback=callback), pp.Targets({"tencent": "http://127.0.0.1:1"}), 0, "")
    assert isinstance(refused, pp.Refused)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"code":0,"message":""}', pp.SUCCESS),
        (200, b'{"code":20001,"message":"CB_CONTENT_ERROR"}', pp.PERMANENT),
        (200, b'{"code":20002,"message":"CONV_ID_ILLEGAL"}', pp.PERMANENT),
        (200, b'{"code":20006,"message":"DECRYPT_B64_CB_ERROR"}', pp.PERMANENT),
        (200, b'{"code":30000,"message":"API_ERROR"}', pp.RETRYABLE),
        (200, b'{"code":11017,"message":"unknown to us"}', pp.RETRYABLE),
        (200, b"not json", pp.RETRYABLE),
        (400, b"", pp.PERMANENT),
        (503, b"", pp.RETRYABLE),
    ],
)
def test_tencent_answers(status: int, body: bytes, outcome: str) -> None:
    assert pp.judge("tencent", status, body).outcome == outcome


# --------------------------------------------------------------------------- Kuaishou


def test_kuaishou_pay_and_activate() -> None:
    pay = decision("kuaishou", "pay")
    request = built(pay)
    assert request.method == "GET" and request.body == b""
    assert request.url == (
        "http://ad.partner.gifshow.com/track/activate?callback=DHAJASALKFyk1uCKBYCyXp-iIDS-uHDd_a5SJ9Dbwkqv"
        "&event_type=3&event_time=1764590400123&purchase_amount=12.35"
    )
    assert dict(request.headers) == {"X-Idempotency-Key": pay.key}
    passes_receiver_check(request, "kuaishou")
    activate = built(decision("kuaishou", "activate"), pp.Targets({"kuaishou": "http://127.0.0.1:7000"}))
    assert activate.url == (
        "http://127.0.0.1:7000/track/activate?callback=DHAJASALKFyk1uCKBYCyXp-iIDS-uHDd_a5SJ9Dbwkqv"
        "&event_type=1&event_time=1764590400123"
    )
    passes_receiver_check(activate, "kuaishou")


def test_kuaishou_callback_kept_byte_for_byte_and_our_params_not_doubled() -> None:
    callback = "http://ad.partner.gifshow.com/track/activate?callback=a%2Bb%3D%3D&event_type=9&x=1"
    url = built(decision("kuaishou", "activate", callback=callback)).url
    assert (
        url
        == "http://ad.partner.gifshow.com/track/activate?callback=a%2Bb%3D%3D&x=1&event_type=1&event_time=1764590400123"
    )
    assert parse_qs(urlsplit(url).query)["callback"] == ["a+b=="]


def test_kuaishou_bare_callback_goes_to_the_documented_endpoint() -> None:
    url = built(decision("kuaishou", "activate", callback="a+b/c==")).url
    assert (
        url
        == "https://ad.partner.gifshow.com/track/activate?callback=a%2Bb%2Fc%3D%3D&event_type=1&event_time=1764590400123"
    )


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"result":1}', pp.SUCCESS),
        (200, b'{"result":0,"error_msg":"callbackinfo decoded failure"}', pp.PERMANENT),
        (200, b'{"result":2,"error_msg":"internal"}', pp.RETRYABLE),
        (200, b"", pp.RETRYABLE),
        (403, b"", pp.RETRYABLE),
        (414, b"", pp.PERMANENT),
        (500, b'{"result":0}', pp.RETRYABLE),
    ],
)
def test_kuaishou_answers(status: int, body: bytes, outcome: str) -> None:
    assert pp.judge("kuaishou", status, body).outcome == outcome


# --------------------------------------------------------------------------- the rest


@pytest.mark.parametrize("platform", ["", "tiktok", "douyin"])
def test_no_sender_is_a_refusal(platform: str) -> None:
    assert isinstance(pp.build(decision(platform), NO_BASES, NOW_S, NONCE), pp.Refused)


def test_unknown_kind_is_a_refusal() -> None:
    for platform in pp.PLATFORMS:
        assert isinstance(pp.build(decision(platform, kind="refund"), NO_BASES, NOW_S, NONCE), pp.Refused)


def test_backoff_doubles_to_its_ceiling_with_at_most_a_quarter_off() -> None:
    assert [pp.backoff_s(n, 1.0, 600.0, 0.0) for n in (1, 2, 3, 10, 11, 30)] == [1, 2, 4, 512, 600, 600]
    assert pp.backoff_s(3, 1.0, 600.0, 0.999) == pytest.approx(4 * 0.75, abs=0.01)


def test_token_bucket_spaces_requests_at_its_rate() -> None:
    bucket = pp.TokenBucket(rate=10, burst=2, now=0.0)
    waits = [bucket.take(0.0) for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.1, 0.2, 0.3])
    assert bucket.take(10.0) == 0  # refilled, never beyond the burst
    assert bucket.take(10.0) == 0
    assert bucket.take(10.0) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        pp.TokenBucket(rate=0, burst=1, now=0.0)
