"""HTTP hardening for every response of ``reelroi serve``: security headers, and HEAD for every GET.

The pages keep the API token in ``localStorage``, so anything that runs script on
the origin can read it: the policy allows only the origin's own files (no inline
script or style, no CDN), forbids framing (clickjacking) and sends no referrer.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
API_PREFIX = "/api/"


class Hardened:
    """ASGI middleware: adds ``SECURITY_HEADERS`` (and ``no-store`` on API answers) to every response,
    and answers ``HEAD`` as the same ``GET`` without its body (RFC 9110 9.3.2), on every route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        private = scope["path"].startswith(API_PREFIX)
        if head:
            scope = {**scope, "method": "GET"}

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if private:  # answers carry a token holder's figures: no cache keeps them
                    headers["Cache-Control"] = "no-store"
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}  # Content-Length stays that of the GET
            await send(message)

        await self.app(scope, receive, send_hardened)
