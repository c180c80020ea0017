"""The three platforms' conversion postbacks (SPEC 7, 回传) as data: requests built and answers judged, no I/O.

docs/postbacks.md has the tables and where each fact comes from. One
``Platform`` per ad platform turns a ``send`` decision into the one HTTP
request the platform documents (``build``) and reads the platform's answer
(``judge``) as ``success``, ``retryable`` or ``permanent``. The caller
(streams/postback_sender.py) owns the clock, the randomness, the network and
the retries: everything here is a function of its arguments, so every
request shape and every verdict is unit-tested without a server.

Callbacks that are URLs (Tencent's and Kuaishou's ``__CALLBACK__``) are sent
only to the platform's own hosts: a callback naming any other host is refused
(a click link is public, so its callback is untrusted input). A configured
base URL replaces the scheme and host of every request of its platform (a
proxy, or a local receiver in tests); the path and query are the callback's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar, NamedTuple, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

import orjson

from attribution.outputs import PostbackDecision

IDEMPOTENCY_HEADER = "X-Idempotency-Key"  # on every request; Tencent also gets the key as outer_action_id
ANSWER_CHARS = 200  # the ledger keeps this much of an answer

SUCCESS, RETRYABLE, PERMANENT, TIMEOUT = "success", "retryable", "permanent", "timeout"
RETRYABLE_STATUS = frozenset({401, 403, 408, 425, 429})  # credentials are configuration: fixable, so retried


class Request(NamedTuple):
    """One HTTP request: what goes on the wire, exactly."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes  # b"" for a GET


class Refused(NamedTuple):
    """A decision that cannot be sent as its platform documents: final (``failed``) without a try."""

    reason: str


class Verdict(NamedTuple):
    outcome: str  # success | retryable | permanent | timeout (the sender's, for no answer in time)
    answer: str  # for the ledger's ``last_answer``: status, the platform's code, a short reason


class Targets(NamedTuple):
    """Where requests go and the credentials they carry (plain values: the settings live in the sender)."""

    bases: Mapping[str, str]  # platform -> "scheme://host[:port][/prefix]" replacing the documented one ("" none)
    tencent_access_token: str = ""  # Tencent's authenticated callbacks (since 2025-03-31); "" sends none


class Platform(Protocol):
    name: str

    def build(self, decision: PostbackDecision, targets: Targets, now_s: int, nonce: str) -> Request | Refused: ...

    def judge(self, status: int, body: bytes) -> Verdict: ...


# --------------------------------------------------------------------------- units


def cents(amount: Decimal) -> int:
    """Minor units (分) of an amount in yuan, half up: ``Decimal("12.345")`` -> 1235."""
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(amount: Decimal) -> str:
    """Yuan with two decimals, half up: ``Decimal("12.3")`` -> ``"12.30"``."""
    return format(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "f")


def outer_action_id(key: str) -> str:
    """The decision key as Tencent's ``outer_action_id`` (it is already a SHA-256 hex; anything else is hashed)."""
    if len(key) == 64 and all(c in "0123456789abcdef" for c in key):
        return key
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


# --------------------------------------------------------------------------- shared pieces


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def _headers(decision: PostbackDecision, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return ((IDEMPOTENCY_HEADER, decision.key), *extra)


def short(text: str) -> str:
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"


def _body_text(body: bytes) -> str:
    return " ".join(body[:ANSWER_CHARS].decode("utf-8", "replace").split())


def http_verdict(status: int, body: bytes) -> Verdict | None:
    """The verdict an HTTP status alone gives (None: a 2xx, for the platform to read).

    408, 425, 429, 5xx, 401/403 (a credential is configuration, fixed without
    touching the decision) and anything unexpected are retried; any other 4xx
    means this request is wrong as sent, and sending it again changes nothing.
    """
    if 200 <= status < 300:
        return None
    answer = short(f"{status} {_body_text(body)}".strip())
    if 400 <= status < 500 and status not in RETRYABLE_STATUS:
        return Verdict(PERMANENT, answer)
    return Verdict(RETRYABLE, answer)


def _object(body: bytes) -> dict[str, object] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _origin(base: str) -> str:
    return base.rstrip("/")


def _callback_url(callback: str, hosts: frozenset[str], base: str) -> tuple[str, str] | Refused | None:
    """(origin, path?query) of a callback URL on one of ``hosts``; None if it is not a URL at all."""
    if not callback.startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(callback)
        host = (parts.hostname or "").lower()
    except ValueError:
        return Refused("the callback is not a valid URL")
    if host not in hosts:
        return Refused(f"the callback's host {host!r} is not the platform's ({', '.join(sorted(hosts))})")
    origin = _origin(base) if base else f"{parts.scheme}://{parts.netloc}"
    rest = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, rest


def _without(query: str, names: frozenset[str]) -> str:
    """``query`` without the pairs named ``names``, every other byte kept (the callback travels as sent)."""
    kept = [pair for pair in query.split("&") if pair and pair.split("=", 1)[0] not in names]
    return "&".join(kept)


# --------------------------------------------------------------------------- Ocean Engine


class OceanEngine:
    """巨量引擎 event-manager conversion API: ``POST /api/v2/conversion`` with a JSON body."""

    name = "oceanengine"
    default_base = "https://analytics.oceanengine.com"
    path = "/api/v2/conversion"
    events: ClassVar[dict[str, str]] = {"activate": "active", "pay": "active_pay"}

    def build(self, decision: PostbackDecision, targets: Targets, now_s: int, nonce: str) -> Request | Refused:
        event = self.events.get(decision.kind)
        if event is None:
            return Refused(f"no Ocean Engine event for kind {decision.kind!r}")
        callback = decision.callback
        if callback.startswith(("http://", "https://")):  # a __CALLBACK_URL__: its callback parameter is the token
            found = dict(parse_qsl(urlsplit(callback).query)).get("callback")
            if not found:
                return Refused("the callback is a URL without a callback parameter")
            callback = found
        body: dict[str, object] = {
            "event_type": event,
            "context": {"ad": {"callback": callback}},
            "timestamp": decision.conversion_us // 1000,  # milliseconds
        }
        if decision.kind == "pay":
            body["properties"] = {"pay_amount": cents(decision.amount)}  # 分
        url = _origin(targets.bases.get(self.name) or self.default_base) + self.path
        return Request("POST", url, _headers(decision, ("Content-Type", "application/json")), _json(body))

    def judge(self, status: int, body: bytes) -> Verdict:
        by_status = http_verdict(status, body)
        if by_status is not None:
            return by_status
        data = _object(body)
        if data is None or "code" not in data:
            return Verdict(RETRYABLE, short(f"{status} not the API's answer: {_body_text(body)}"))
        code, message = data.get("code"), str(data.get("message", ""))
        if code == 0:
            return Verdict(SUCCESS, short(f"{status} code=0 {message}".strip()))
        # The conversion API documents only code 0; its GET predecessor says to retry on any other code.
        return Verdict(RETRYABLE, short(f"{status} code={code} {message}".strip()))


# --------------------------------------------------------------------------- Tencent


class Tencent:
    """腾讯广告 conversion return: ``POST`` to the click's ``__CALLBACK__`` URL (user_actions/add), JSON actions."""

    name = "tencent"
    hosts = frozenset({"api.e.qq.com", "tracking.e.qq.com"})
    actions: ClassVar[dict[str, str]] = {"activate": "ACTIVATE_APP", "pay": "PURCHASE"}
    permanent_codes = frozenset({20001, 20002, 20006})  # CB_CONTENT_ERROR, CONV_ID_ILLEGAL, DECRYPT_B64_CB_ERROR

    def build(self, decision: PostbackDecision, targets: Targets, now_s: int, nonce: str) -> Request | Refused:
        action = self.actions.get(decision.kind)
        if action is None:
            return Refused(f"no Tencent action for kind {decision.kind!r}")
        where = _callback_url(decision.callback, self.hosts, targets.bases.get(self.name, ""))
        if where is None:
            return Refused("a Tencent callback is the URL-decoded __CALLBACK__ URL; this one is not a URL")
        if isinstance(where, Refused):
            return where
        origin, rest = where
        entry: dict[str, object] = {
            "outer_action_id": outer_action_id(decision.key),  # Tencent dedupes by it
            "action_time": decision.conversion_us // 1_000_000,  # seconds
            "action_type": action,
        }
        if decision.kind == "pay":
            entry["action_param"] = {"value": cents(decision.amount)}  # 分
        headers = [("Content-Type", "application/json")]
        if targets.tencent_access_token:
            token = targets.tencent_access_token
            # The official example writes access_token; a later guide access-token. Both are sent: the other is ignored.
            headers += [("access_token", token), ("access-token", token), ("timestamp", str(now_s)), ("nonce", nonce)]
        return Request("POST", origin + rest, _headers(decision, *headers), _json({"actions": [entry]}))

    def judge(self, status: int, body: bytes) -> Verdict:
        by_status = http_verdict(status, body)
        if by_status is not None:
            return by_status
        data = _object(body)
        if data is None or "code" not in data:
            return Verdict(RETRYABLE, short(f"{status} not the API's answer: {_body_text(body)}"))
        code, message = data.get("code"), str(data.get("message", ""))
        answer = short(f"{status} code={code} {message}".strip())
        if code == 0:
            return Verdict(SUCCESS, answer)
        if code in self.permanent_codes:  # the callback or conversion id itself is wrong
            return Verdict(PERMANENT, answer)
        return Verdict(RETRYABLE, answer)


# --------------------------------------------------------------------------- Kuaishou


class Kuaishou:
    """快手 / 磁力引擎 conversion return: ``GET`` the click's callback URL with ``event_type`` and ``event_time``."""

    name = "kuaishou"
    hosts = frozenset({"ad.partner.gifshow.com"})
    default_base = "https://ad.partner.gifshow.com"
    path = "/track/activate"
    events: ClassVar[dict[str, int]] = {"activate": 1, "pay": 3}
    ours = frozenset({"event_type", "event_time", "purchase_amount"})

    def build(self, decision: PostbackDecision, targets: Targets, now_s: int, nonce: str) -> Request | Refused:
        event = self.events.get(decision.kind)
        if event is None:
            return Refused(f"no Kuaishou event for kind {decision.kind!r}")
        base = targets.bases.get(self.name, "")
        where = _callback_url(decision.callback, self.hosts, base)
        if isinstance(where, Refused):
            return where
        if where is None:  # the bare callback parameter: the documented endpoint with it
            origin, path, query = (
                _origin(base or self.default_base),
                self.path,
                f"callback={quote(decision.callback, safe='')}",
            )
        else:
            origin, rest = where
            path, _, query = rest.partition("?")
            query = _without(query, self.ours)
        params = f"event_type={event}&event_time={decision.conversion_us // 1000}"  # milliseconds
        if decision.kind == "pay":
            params += f"&purchase_amount={yuan(decision.amount)}"  # 元, two decimals
        url = f"{origin}{path}?{query + '&' if query else ''}{params}"
        return Request("GET", url, _headers(decision), b"")

    def judge(self, status: int, body: bytes) -> Verdict:
        by_status = http_verdict(status, body)
        if by_status is not None:
            return by_status
        data = _object(body)
        if data is None or "result" not in data:
            return Verdict(RETRYABLE, short(f"{status} not the API's answer: {_body_text(body)}"))
        result = data.get("result")
        answer = short(f"{status} {_body_text(body)}")
        if result == 1:
            return Verdict(SUCCESS, short(f"{status} result=1"))
        if "callback" in body.decode("utf-8", "replace").lower():  # e.g. "callbackinfo decoded failure"
            return Verdict(PERMANENT, answer)
        return Verdict(RETRYABLE, answer)


PLATFORMS: dict[str, Platform] = {p.name: p for p in (OceanEngine(), Tencent(), Kuaishou())}


def build(decision: PostbackDecision, targets: Targets, now_s: int, nonce: str) -> Request | Refused:
    """The request for ``decision`` on its platform, or why there is none."""
    platform = PLATFORMS.get(decision.platform)
    if platform is None:
        return Refused(f"no postback sender for platform {decision.platform!r}")
    return platform.build(decision, targets, now_s, nonce)


def judge(platform: str, status: int, body: bytes) -> Verdict:
    """The platform's answer (HTTP status and body) as a verdict."""
    return PLATFORMS[platform].judge(status, body)


def backoff_s(attempts: int, first: float, most: float, jitter: float) -> float:
    """The pause after the ``attempts``-th failed try: ``first`` doubling up to ``most``, less up to a quarter.

    ``jitter`` in [0, 1) comes from the caller, so senders that failed together
    do not all come back at the same instant.
    """
    delay = min(most, first * 2.0 ** max(0, attempts - 1))
    return delay * (1 - 0.25 * jitter)


class TokenBucket:
    """``rate`` requests a second on average, bursts of up to ``burst``; the clock is the caller's."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, now

    def take(self, now: float) -> float:
        """Reserve one token: seconds to wait before using it (0: now). Reservations queue in order."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
