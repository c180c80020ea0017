"""The secret of a click-monitor link: platforms call a URL and cannot send a bearer header.

A link carries ``link_key=<token_id>.<mac>``, where ``mac`` is the first 128 bits
(32 hex digits) of HMAC-SHA256 keyed by the SHA-256 of the producer token's
secret, over ``reelroi click link v1:<platform>``. Whoever holds the token can
compute its links (``reelroi collect --links``); the collector computes the same
from the hash it stores, so no new secret is stored. A link works for one
platform only, it dies with its token (``reelroi token revoke``), and it does not
reveal the token: leaking a link lets someone send clicks, nothing more. The
key is removed from the request line before a rejected query is kept.
"""

from __future__ import annotations

import hashlib
import hmac

LINK_PARAM = "link_key"
_CONTEXT = b"reelroi click link v1:"


def link_mac(secret_sha256: str, platform: str) -> str:
    """The link MAC of the token whose secret hashes to ``secret_sha256`` (hex) for ``platform``."""
    key = bytes.fromhex(secret_sha256)
    return hmac.new(key, _CONTEXT + platform.encode(), hashlib.sha256).hexdigest()[:32]


def link_key_of_token(token: str, platform: str) -> str:
    """``<token_id>.<mac>`` for a ``rr_<id>_<secret>`` token (what ``reelroi collect --links`` prints)."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "rr" or not parts[1] or not parts[2]:
        raise ValueError("not a reelroi token (rr_<id>_<secret>)")
    return f"{parts[1]}.{link_mac(hashlib.sha256(parts[2].encode()).hexdigest(), platform)}"


def strip_link_key(query: bytes) -> bytes:
    """``query`` without its ``link_key=`` parameter(s), every other byte as received."""
    if LINK_PARAM.encode() not in query:
        return query
    prefix = LINK_PARAM.encode() + b"="
    return b"&".join(part for part in query.split(b"&") if not part.startswith(prefix) and part != prefix[:-1])
