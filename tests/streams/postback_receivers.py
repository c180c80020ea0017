"""Local stand-ins for the three platforms' postback endpoints, for tests (docs/postbacks.md).

    with Receivers() as rx:
        rx.plan(key, "retryable", "ok")          # the first request with that key fails, the second succeeds
        env = rx.env()                          # REELROI_POSTBACK_URL_<PLATFORM> pointing here
        ...
        assert rx.got(key) == 2 and rx.problems() == []

One ``http.server`` per platform, each in a thread. Every request is checked
against what the platform documents (``check``: method, path, query, headers,
body fields and their units) independently of streams/postback_platforms.py;
what does not match is recorded as a problem and answered with the platform's
own parameter error. A matching request gets what the plan says for its
idempotency key, else ``ok``:

- ``ok``: the platform's success answer;
- ``retryable``: an answer the platform documents as "try again";
- ``permanent``: an answer that will never change for this request;
- ``timeout``: no answer for ``hold_s`` seconds (longer than the sender waits), then success;
- ``slow``: success, but only after ``hold_s`` seconds.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

OK, RETRYABLE, PERMANENT, TIMEOUT, SLOW = "ok", "retryable", "permanent", "timeout", "slow"
KEY_HEADER = "x-idempotency-key"
CB_HOSTS = {"tencent": "https://api.e.qq.com", "kuaishou": "http://ad.partner.gifshow.com"}


@dataclass
class Received:
    platform: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None
    key: str
    behaviour: str
    problems: list[str]
    at: float = field(default_factory=time.time)


# --------------------------------------------------------------------------- what each platform documents


def _ms(value: Any) -> bool:
    return type(value) is int and 10**12 <= value < 10**13  # 13 digits: a millisecond Unix time


def _s(value: Any) -> bool:
    return type(value) is int and 10**9 <= value < 10**10  # 10 digits: seconds


def check(platform: str, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[list[str], Any]:
    """Problems with a request as ``platform`` documents it (empty: it is right), and its JSON body."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    problems: list[str] = []
    body: Any = None
    if not headers.get(KEY_HEADER):
        problems.append("no idempotency key header")
    if method == "POST":
        if headers.get("content-type", "").split(";")[0] != "application/json":
            problems.append(f"content-type {headers.get('content-type')!r}")
        try:
            body = json.loads(raw)
        except ValueError:
            problems.append("body is not JSON")
            return problems, None
    if platform == "oceanengine":
        if (method, parts.path) != ("POST", "/api/v2/conversion"):
            problems.append(f"{method} {parts.path}: expected POST /api/v2/conversion")
        if not isinstance(body, dict):
            return [*problems, "body is not an object"], body
        event = body.get("event_type")
        if event not in ("active", "active_pay"):
            problems.append(f"event_type {event!r}")
        callback = (body.get("context") or {}).get("ad", {}).get("callback")
        if not isinstance(callback, str) or not callback:
            problems.append("context.ad.callback missing")
        if not _ms(body.get("timestamp")):
            problems.append(f"timestamp {body.get('timestamp')!r} is not milliseconds")
        amount = (body.get("properties") or {}).get("pay_amount")
        if event == "active_pay" and not (type(amount) is int and amount > 0):
            problems.append(f"properties.pay_amount {amount!r} is not a positive whole number of 分")
        if event == "active" and "properties" in body:
            problems.append("an activation carries properties")
        extra = set(body) - {"event_type", "context", "timestamp", "properties"}
        if extra:
            problems.append(f"unknown fields {sorted(extra)}")
    elif platform == "tencent":
        if (method, parts.path) != ("POST", "/v3.0/user_actions/add"):
            problems.append(f"{method} {parts.path}: expected POST /v3.0/user_actions/add")
        if not query.get("cb") or not query.get("conv_id"):
            problems.append("the callback's cb and conv_id are not in the query")
        for name in ("access_token", "timestamp", "nonce"):
            if not headers.get(name):
                problems.append(f"no {name} header")
        if headers.get("timestamp") and abs(int(headers["timestamp"]) - time.time()) > 300:
            problems.append("timestamp header more than 300 s off")
        if len(headers.get("nonce", "")) > 32:
            problems.append("nonce longer than 32 characters")
        actions = body.get("actions") if isinstance(body, dict) else None
        if not isinstance(actions, list) or len(actions) != 1:
            return [*problems, "actions is not a list of one"], body
        action = actions[0]
        kind = action.get("action_type")
        if kind not in ("ACTIVATE_APP", "PURCHASE"):
            problems.append(f"action_type {kind!r}")
        if not _s(action.get("action_time")):
            problems.append(f"action_time {action.get('action_time')!r} is not seconds")
        if not re.fullmatch(r"[0-9a-f]{64}", str(action.get("outer_action_id", ""))):
            problems.append("outer_action_id is not the decision key")
        elif action["outer_action_id"] != headers.get(KEY_HEADER):
            problems.append("outer_action_id differs from the idempotency key")
        value = (action.get("action_param") or {}).get("value")
        if kind == "PURCHASE" and not (type(value) is int and value > 0):
            problems.append(f"action_param.value {value!r} is not a positive whole number of 分")
    elif platform == "kuaishou":
        if (method, parts.path) != ("GET", "/track/activate"):
            problems.append(f"{method} {parts.path}: expected GET /track/activate")
        for name in ("callback", "event_type", "event_time"):
            if len(query.get(name, [])) != 1:
                problems.append(f"{name} not given exactly once")
        event = query.get("event_type", [""])[0]
        if event not in ("1", "3"):
            problems.append(f"event_type {event!r}")
        if not re.fullmatch(r"[0-9]{13}", query.get("event_time", [""])[0]):
            problems.append("event_time is not 13-digit milliseconds")
        amount = query.get("purchase_amount", [])
        if event == "3" and not (len(amount) == 1 and re.fullmatch(r"[0-9]+\.[0-9]{2}", amount[0])):
            problems.append(f"purchase_amount {amount!r} is not yuan with two decimals")
        if event == "1" and amount:
            problems.append("an activation carries purchase_amount")
    return problems, body


# answers: behaviour -> (HTTP status, JSON body)
ANSWERS: dict[str, dict[str, tuple[int, Any]]] = {
    "oceanengine": {
        OK: (200, {"code": 0, "message": "成功"}),
        RETRYABLE: (200, {"code": 50000, "message": "服务繁忙，请稍后重试"}),
        PERMANENT: (400, {"code": 40000, "message": "参数错误"}),
    },
    "tencent": {
        OK: (200, {"code": 0, "message": "", "message_cn": ""}),
        RETRYABLE: (200, {"code": 30000, "message": "API_ERROR"}),
        PERMANENT: (200, {"code": 20001, "message": "CB_CONTENT_ERROR"}),
    },
    "kuaishou": {
        OK: (200, {"result": 1}),
        RETRYABLE: (503, {"result": 0, "error_msg": "service unavailable"}),
        PERMANENT: (200, {"result": 0, "error_msg": "callbackinfo decoded failure"}),
    },
}


class Receiver:
    """One platform's endpoint on 127.0.0.1, in a thread."""

    def __init__(self, platform: str, hold_s: float = 3.0) -> None:
        self.platform, self.hold_s = platform, hold_s
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.plans: dict[str, list[str]] = defaultdict(list)
        self.default = OK
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, hold = receiver.answer(self.command, self.path, headers, raw)
                if hold:
                    time.sleep(hold)
                data = json.dumps(answer, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender stopped waiting (a timeout) or died
                    pass

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"rx-{platform}", daemon=True)
        self.thread.start()

    def answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, float]:
        problems, body = check(self.platform, method, target, headers, raw)
        key = headers.get(KEY_HEADER, "")
        with self.lock:
            plan = self.plans.get(key)
            behaviour = plan.pop(0) if plan else self.default
            if problems:
                behaviour = "invalid"
            self.received.append(Received(self.platform, method, urlsplit(target).path,
                                          parse_qs(urlsplit(target).query), headers, body, key, behaviour, problems))  # fmt: skip
        if problems:
            return (*ANSWERS[self.platform][PERMANENT], 0.0)
        if behaviour in (TIMEOUT, SLOW):
            return (*ANSWERS[self.platform][OK], self.hold_s)
        return (*ANSWERS[self.platform][behaviour], 0.0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receivers:
    """The three receivers; ``env`` points ``reelroi postback`` at them."""

    def __init__(self, hold_s: float = 3.0) -> None:
        self.by_platform = {p: Receiver(p, hold_s) for p in ("oceanengine", "tencent", "kuaishou")}

    def __enter__(self) -> Receivers:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for receiver in self.by_platform.values():
            receiver.close()

    def env(self) -> dict[str, str]:
        return {f"REELROI_POSTBACK_URL_{p.upper()}": r.url for p, r in self.by_platform.items()}

    def plan(self, platform: str, key: str, *behaviours: str) -> None:
        """What the next requests with ``key`` get, in order (then ``ok``)."""
        receiver = self.by_platform[platform]
        with receiver.lock:
            receiver.plans[key].extend(behaviours)

    def unplan(self, platform: str, key: str) -> None:
        """Forget what is left of ``key``'s plan: its next requests get ``ok``."""
        receiver = self.by_platform[platform]
        with receiver.lock:
            receiver.plans.pop(key, None)

    def requests(self, key: str | None = None) -> list[Received]:
        out = []
        for receiver in self.by_platform.values():
            with receiver.lock:
                out.extend(r for r in receiver.received if key is None or r.key == key)
        return sorted(out, key=lambda r: r.at)

    def got(self, key: str) -> int:
        return len(self.requests(key))

    def problems(self) -> list[tuple[str, str, list[str]]]:
        return [(r.platform, r.key, r.problems) for r in self.requests() if r.problems]
